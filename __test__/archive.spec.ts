/**
 * ArchiveWriter fed by watch() on a network namespace with real connections (veth to a
 * second namespace): every connection has a file series that `zstd -dc` decodes, whose
 * header matches its file name, and the last record of each closed connection carries
 * its final tcp_info (bytes_acked: exactly what the server received, plus SYN and FIN).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import test from 'ava'

import { ArchiveWriter, snapshot, TcpinfoError, watch } from '../src/index.js'
import { startSink } from './helpers/tcp.js'

const PREFIX = 'archive-spec_1700000000_unsafe'
const PORT = 45_123
const SIZES = [10_000, 100_000, 250_000, 1_000_000, 3_000]
/** Offsets in struct tcp_info (shared/reference/KERNEL-UAPI.md). */
const TCPI_BYTES_ACKED = 120

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' })
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.jsonl.zst'))
    .map((e) => join(e.parentPath, e.name))
}

function lines(path: string): string[] {
  const r = spawnSync('zstd', ['-dcq', path], { encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`zstd -dc ${path}: ${r.stderr}`)
  return r.stdout.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1)
}

/** A child node process in a namespace, its stdout as JSON lines. */
function nodeIn(ns: string, script: string): { child: ChildProcess; lines: AsyncIterableIterator<string> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  const rl = createInterface({ input: child.stdout! })
  return { child, lines: rl[Symbol.asyncIterator]() }
}

test.serial('watch() batches archived: one file series per connection, final tcp_info last', async (t) => {
  const tag = `arch${process.pid % 100_000}`
  const [nsA, nsB] = [`${tag}a`, `${tag}b`]
  ip('netns', 'add', nsA)
  t.teardown(() => ip('netns', 'del', nsA))
  ip('netns', 'add', nsB)
  t.teardown(() => ip('netns', 'del', nsB))
  ip('link', 'add', `${tag}x`, 'netns', nsA, 'type', 'veth', 'peer', 'name', `${tag}y`, 'netns', nsB)
  ip('-n', nsA, 'addr', 'add', '10.231.0.1/24', 'dev', `${tag}x`)
  ip('-n', nsB, 'addr', 'add', '10.231.0.2/24', 'dev', `${tag}y`)
  ip('-n', nsA, 'link', 'set', `${tag}x`, 'up')
  ip('-n', nsB, 'link', 'set', `${tag}y`, 'up')
  // A 20 Mbit/s bottleneck with a queue: transfers last long enough for many polls and frames.
  execFileSync('ip', ['netns', 'exec', nsA, 'tc', 'qdisc', 'add', 'dev', `${tag}x`, 'root', 'tbf', 'rate', '20mbit', 'burst', '16kb', 'latency', '20ms'])

  const server = nodeIn(
    nsB,
    `require('net').createServer((s) => { let n = 0; s.on('data', (d) => (n += d.length));
       s.on('end', () => { console.log(JSON.stringify({ port: s.remotePort, n })); s.end() }) })
     .listen(${PORT}, '10.231.0.2', () => console.log('{"up":true}'))`,
  )
  t.teardown(() => server.child.kill())
  await server.lines.next()

  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-archive-spec-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const writer = new ArchiveWriter({ output: out, uuidPrefix: PREFIX, flushIntervalMs: 50 })
  t.teardown(() => writer.close())
  t.throws(() => new ArchiveWriter({ output: out, uuidPrefix: '../evil' }), { instanceOf: TcpinfoError, code: 'ERR_CONFIG' })

  const w = watch({ netns: `/var/run/netns/${nsA}`, intervalMs: 10, uuidPrefix: PREFIX })
  const portOf = new Map<string, number>()
  const closed = new Set<string>()
  let polls = 0
  const loop = (async () => {
    for await (const batch of w) {
      polls++
      if (!writer.write(batch)) await writer.waitForRoom()
      for (const c of batch.connections) {
        if (c.id?.dstPort === PORT) portOf.set(c.uuid, c.id.srcPort)
        if (c.kind === 'closed') closed.add(c.uuid)
      }
    }
  })()

  // One connection stays open; the others send SIZES[i] bytes and close.
  const client = nodeIn(
    nsA,
    `const net = require('net'); const sizes = ${JSON.stringify(SIZES)};
     const idle = net.connect(${PORT}, '10.231.0.2', () => { idle.write('x'.repeat(1000)); console.log(JSON.stringify({ idle: idle.localPort })) });
     (async () => { for (const n of sizes) await new Promise((done) => {
       const c = net.connect(${PORT}, '10.231.0.2', () => { const port = c.localPort; c.end(Buffer.alloc(n, 97));
         c.on('close', () => { console.log(JSON.stringify({ port, n })); done() }) }); c.resume() }) })()`,
  )
  t.teardown(() => client.child.kill())
  const sent = new Map<number, number>()
  let idlePort = 0
  for await (const l of client.lines) {
    const m = JSON.parse(l) as { idle?: number; port?: number; n?: number }
    if (m.idle) idlePort = m.idle
    else sent.set(m.port!, m.n!)
    if (sent.size === SIZES.length && idlePort) break
  }
  const received = new Map<number, number>()
  for await (const l of server.lines) {
    const m = JSON.parse(l) as { port: number; n: number }
    received.set(m.port, m.n)
    if (received.size === SIZES.length) break
  }
  const deadline = Date.now() + 5000
  const closedPorts = () => [...closed].map((u) => portOf.get(u)).filter((p) => p !== undefined && sent.has(p))
  while (closedPorts().length < SIZES.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  w.close()
  await loop
  t.is(writer.rotate([...portOf.keys(), 'other-prefix_0000000000000001']), portOf.size, 'rotate() knows its own UUIDs')
  await writer.close()

  t.true(polls > 0)
  const s = writer.stats()
  t.is(s.recordsDropped, 0)
  t.is(s.openFiles, 0)
  t.true(s.recordsWritten > 0)
  t.true(s.framesWritten > portOf.size, 'several flushes per connection')
  const all = files(out)
  for (const [uuid, port] of portOf) {
    const series = all.filter((f) => f.includes(`/${uuid}.`)).sort()
    t.true(series.length > 0, `${uuid} (port ${port}) has files`)
    const records: string[] = []
    series.forEach((f, seq) => {
      t.is(spawnSync('zstd', ['-tq', f]).status, 0, `zstd -t ${f}`)
      const [head, ...rest] = lines(f)
      const h = JSON.parse(head!) as { Timestamp: string; Metadata: { UUID: string; Sequence: number; StartTime: string } }
      t.is(h.Timestamp, '0001-01-01T00:00:00Z')
      t.is(h.Metadata.UUID, uuid)
      t.is(h.Metadata.Sequence, seq)
      t.true(f.endsWith(`${uuid}.${String(seq).padStart(5, '0')}.jsonl.zst`))
      records.push(...rest)
    })
    t.true(records.length > 0)
    const last = JSON.parse(records.at(-1)!) as { RawIDM: string; Attributes: (string | null)[] }
    t.is(Buffer.from(last.RawIDM, 'base64').readUInt16BE(4), port, 'RawIDM is the connection')
    const n = sent.get(port)
    if (n === undefined) continue // the idle connection
    t.is(received.get(port), n, 'the server received what the client sent')
    const info = Buffer.from(last.Attributes[2] ?? '', 'base64')
    const acked = info.readBigUInt64LE(TCPI_BYTES_ACKED)
    // An active opener's snd_una moves over its SYN and its FIN too.
    t.is(acked, BigInt(n + 2), `final bytes_acked: the ${n} bytes sent, SYN and FIN`)
  }
  const sorted = (ports: Iterable<number>) => [...new Set(ports)].sort((a, b) => a - b)
  t.deepEqual(sorted(portOf.values()), sorted([...sent.keys(), idlePort]), 'every connection is archived')
})

test('write() checks the UUID prefix; a closed writer rejects writes with ERR_CLOSED; stats count', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-archive-spec-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const batch = await snapshot({ uuidPrefix: PREFIX })
  t.true(batch.size > 0, 'at least the listener')
  const other = new ArchiveWriter({ output: out, uuidPrefix: 'someone-else_1_unsafe' })
  t.throws(() => other.write(batch), { instanceOf: TcpinfoError, code: 'ERR_CONFIG' })
  await other.close()

  const w = new ArchiveWriter({ output: out, uuidPrefix: PREFIX })
  t.true(w.write(batch))
  await w.flush()
  const s = w.stats()
  t.is(s.recordsWritten, batch.size, 'every socket of the snapshot archived')
  t.is(s.filesOpened, batch.size)
  t.deepEqual(Object.keys(s.writeErrors).sort(), ['exists', 'no_space', 'other', 'permission', 'quota', 'read_only', 'too_many_files'])
  t.deepEqual(w.takeErrors(), [])
  await w.close()
  await w.close() // idempotent
  t.is(w.stats().openFiles, 0)
  t.is(files(out).length, batch.size)
  t.throws(() => w.write(batch), { instanceOf: TcpinfoError, code: 'ERR_CLOSED' })
})
