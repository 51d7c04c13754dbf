#!/usr/bin/env node
// Microbenchmark: the cost of one zero-copy Buffer view per record, the ways Node 20 offers,
// over a real batch region (an external Buffer made by the native addon: the lines of a
// snapshot of this host), 10k views per pass (docs/BENCHMARKS.md, Findings). Why it matters:
// Connection.archivalLine and .raw make one such view per record. Needs the built package.
//
//   node bench/views.mjs
import { Buffer } from 'node:buffer'
import { spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const RECORDS = 10_000
const LEN = 64
const { snapshot } = await import(new URL('../dist/index.js', import.meta.url).href)
const server = createServer().listen(0, '127.0.0.1') // at least one socket in the snapshot
await new Promise((resolve) => server.once('listening', resolve))
const buf = (await snapshot()).archivalLines()
server.close()
if (buf.length < LEN) throw new Error('the snapshot is too small')
const SPAN = buf.length - LEN + 1
/** Where the i-th view starts: spread over the region. */
const at = (i) => (i * 97) % SPAN
const ab = buf.buffer
const base = buf.byteOffset
const FastBuffer = Buffer[Symbol.species]

class ProtoBuffer extends Uint8Array {}
Object.setPrototypeOf(ProtoBuffer.prototype, Buffer.prototype)

const ways = {
  'buf.subarray(start, end)': (i) => buf.subarray(at(i), at(i) + LEN),
  'Buffer.from(buf.buffer, off, len)': (i) => Buffer.from(buf.buffer, buf.byteOffset + at(i), LEN),
  'Buffer.from(cachedArrayBuffer, off, len)': (i) => Buffer.from(ab, base + at(i), LEN),
  'new Buffer[Symbol.species](cachedArrayBuffer, off, len)  (used)': (i) => new FastBuffer(ab, base + at(i), LEN),
  'Uint8Array subclass with Buffer.prototype (not a plain Buffer)': (i) => new ProtoBuffer(ab, base + at(i), LEN),
}

// Each way runs in its own process: in one process the shared loop's call site would turn
// megamorphic and the later ways would pay for the earlier ones.
const which = process.argv.indexOf('--way')
if (which < 0) {
  for (const name of Object.keys(ways)) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--way', name], { encoding: 'utf8' })
    process.stdout.write(r.stdout || r.stderr)
  }
} else {
  const name = process.argv[which + 1]
  const make = ways[name]
  const pass = () => {
    let n = 0
    for (let i = 0; i < RECORDS; i++) n += make(i).length
    return n
  }
  for (let w = 0; w < 50; w++) pass()
  const rounds = 300
  const t0 = process.hrtime.bigint()
  for (let r = 0; r < rounds; r++) pass()
  const ns = Number(process.hrtime.bigint() - t0) / rounds / RECORDS
  process.stdout.write(`${ns.toFixed(1).padStart(7)} ns/view  ${name}\n`)
}
