#!/usr/bin/env node
// Cost of `Connection.tcpInfo` (issue 11): µs per record to read the decoded tcp_info of
// every record of a batch, the way it is done now (built in JS from the record's bytes,
// src/api/tcp-info.ts) and the way it was (`nativeDecodeRecords`: the whole decoded tree
// through napi, ~100 properties set one by one), and `Connection.decoded` (everything).
// CPU time (process.cpuUsage), best of R rounds, on the busy NDT fixture's batches (891
// records, 224-byte tcp_info) and a live snapshot of this host (this kernel's length).
// Results: docs/BENCHMARKS.md ("Typed tcp_info").
//
//   node bench/tcp-info.mjs [--rounds 5] [--copies 20]
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createServer, connect } from 'node:net'
import { once } from 'node:events'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { readArchive, snapshot } = await import(join(ROOT, 'dist/index.js'))
const { native } = await import(join(ROOT, 'dist/native.js'))
const arg = (name, def) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
const ROUNDS = arg('--rounds', 5)
const COPIES = arg('--copies', 20)
const NDT = join(ROOT, 'crates/tcpinfo-core/tests/fixtures/mlab/ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst')

/** Fresh batches (nothing decoded or cached yet). */
async function ndtBatches() {
  const out = []
  for (let i = 0; i < COPIES; i++) for await (const b of readArchive(NDT).batches()) out.push(b)
  return out
}
async function liveBatches() {
  const out = []
  for (let i = 0; i < COPIES; i++) out.push(await snapshot())
  return out
}

function cpu(fn) {
  const c0 = process.cpuUsage()
  const n = fn()
  const c = process.cpuUsage(c0)
  return { n, s: (c.user + c.system) / 1e6 }
}

const ways = {
  'c.tcpInfo (JS from the bytes)': (batches) => {
    let n = 0
    let x = 0n
    for (const b of batches) for (const c of b.connections) {
      const t = c.tcpInfo
      if (t) { x ^= t.bytesAcked ?? 0n; n++ }
    }
    return x === -1n ? 0 : n
  },
  'nativeDecodeRecords (before: the object tree through napi)': (batches) => {
    let n = 0
    for (const b of batches) {
      const all = native().nativeDecodeRecords(b.index, b.payloads)
      for (const d of all) if (d?.tcpInfo) n++
    }
    return n
  },
  'c.decoded (everything: napi tree without tcp_info, plus c.tcpInfo)': (batches) => {
    let n = 0
    for (const b of batches) for (const c of b.connections) if (c.decoded?.tcpInfo) n++
    return n
  },
}

const server = createServer().listen(0, '127.0.0.1')
await once(server, 'listening')
const clients = Array.from({ length: 50 }, () => connect(server.address().port, '127.0.0.1'))
await Promise.all(clients.map((c) => once(c, 'connect')))
console.log(`node ${process.version}; CPU µs per record, best of ${ROUNDS}\n`)
console.log('| source | way | records | µs per record |')
console.log('|---|---|---:|---:|')
for (const [label, make] of [['NDT fixture (224 B)', ndtBatches], ['live snapshot', liveBatches]]) {
  for (const [way, fn] of Object.entries(ways)) {
    let best
    for (let r = 0; r < ROUNDS; r++) {
      const batches = await make()
      const run = cpu(() => fn(batches))
      if (!best || run.s < best.s) best = run
    }
    console.log(`| ${label} | ${way} | ${best.n} | ${((best.s * 1e6) / best.n).toFixed(2)} |`)
  }
}
for (const c of clients) c.destroy()
server.close()
