// Throughput and CPU of the Kafka sink (issue 12) to a local broker, beside the archive's
// CPU per record. Synthetic polls of a real M-Lab ArchivalRecord line (distinct cookies, so
// every partition gets records) go through KafkaSink.offer() in this Node process, as the
// collector feeds it; the offer loop keeps about `ahead` records buffered so the sink's pace,
// not the buffer, sets the rate. CPU is split between the Node thread (offer) and the
// producer thread (`tcpinfo-kafka`, from /proc/self/task/*/stat). Then the same polls go
// through the ArchiveWriter (zstd files in a temp directory) for its CPU per record.
//   BROKER=127.0.0.1:PORT node bench/kafka-sink.mjs [records-per-poll] [seconds] [compression] [format] [records-per-second]
// (records-per-second: offer on that schedule, 200000 for the target; 0 or absent: as fast as taken)
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { ArchiveWriter } from '../dist/archive/writer.js'
import { KafkaSink } from '../dist/sinks/kafka-sink.js'

const broker = process.env.BROKER
if (!broker) throw new Error('BROKER=host:port is required (scripts/kafka.sh start DIR)')
const perPoll = Number(process.argv[2] ?? 2000)
const seconds = Number(process.argv[3] ?? 10)
const compression = process.argv[4] ?? 'none'
const format = process.argv[5] ?? 'archival'
// Records per second to offer (polls of `perPoll` on a schedule); 0: as fast as the sink takes them.
const rate = Number(process.argv[6] ?? 0)
const fixture = new URL('../crates/tcpinfo-core/tests/fixtures/mlab/ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst', import.meta.url).pathname
const text = spawnSync('zstd', ['-dcq', fixture], { encoding: 'utf8' }).stdout.split('\n')[1]
const line = Buffer.from(`${text}\n`)
// The netlink payload of the same record (inet_diag_msg + rtattrs), for the decoded format.
const rec = JSON.parse(text)
const parts = [Buffer.from(rec.RawIDM, 'base64')]
rec.Attributes.forEach((a, type) => {
  if (a === null) return
  const body = Buffer.from(a, 'base64')
  const hdr = Buffer.alloc(4)
  hdr.writeUInt16LE(4 + body.length, 0)
  hdr.writeUInt16LE(type, 2)
  parts.push(hdr, body, Buffer.alloc((4 - (body.length % 4)) % 4))
})
const payload = Buffer.concat(parts)

const prefix = 'bench'
let cookieBase = 0n
/** A poll of `perPoll` changed records with fresh cookies every `reuse` polls. */
function makeBatch(seq) {
  const index = Buffer.alloc(perPoll * 32)
  const lines = Buffer.alloc(perPoll * line.length)
  const payloads = Buffer.alloc(perPoll * payload.length)
  for (let i = 0; i < perPoll; i++) {
    line.copy(lines, i * line.length)
    payload.copy(payloads, i * payload.length)
    const o = i * 32
    index[o] = 1 // changed
    index[o + 1] = 1 // has record
    index[o + 2] = 2 // AF_INET
    index[o + 3] = 1 // ESTABLISHED
    index.writeUInt32LE(i * payload.length, o + 4)
    index.writeUInt32LE(payload.length, o + 8)
    index.writeUInt32LE(i * line.length, o + 12)
    index.writeUInt32LE(line.length, o + 16)
    index.writeBigUInt64LE(cookieBase + BigInt(i), o + 24)
  }
  return { index, lines, payloads, size: perPoll, seq, timestampNs: BigInt(Date.now()) * 1_000_000n, uuidPrefix: prefix, namespaces: [{ inode: 1, name: null, host: true, uuidTag: '' }] }
}
const batch = makeBatch(1)

/** CPU seconds of this process's threads named `name` (utime + stime from /proc); `.user`, `.sys` apart. */
function threadCpu(name) {
  const tick = 100
  let s = 0
  let user = 0
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      if (comm !== name) continue
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      s += (Number(f[11]) + Number(f[12])) / tick
      user += Number(f[11]) / tick
    } catch {}
  }
  return { all: s, user, sys: s - user }
}
const cpuS = (u) => (u.user + u.system) / 1e6
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// --- Kafka ---
const sink = new KafkaSink({ brokers: [broker], topic: `bench-${process.pid}`, uuidPrefix: prefix, compression, format, bufferBytes: 512 << 20 })
const ahead = Math.max(4 * perPoll, 20_000)
// Warm up (connect, topic auto-created) before the clock starts.
sink.offer(batch)
for (let i = 0; i < 200 && sink.stats().delivered < perPoll; i++) await sleep(50)
const d0 = sink.stats().delivered
const cpu0 = process.cpuUsage()
const prod0 = threadCpu('tcpinfo-kafka')
const t0 = performance.now()
let offerNs = 0n
let offered = 0
while (performance.now() - t0 < seconds * 1000) {
  const st = sink.stats()
  const due = rate === 0 || offered < (rate * (performance.now() - t0)) / 1000
  if (due && st.bufferedRecords + st.intakePolls * perPoll < ahead) {
    offered += perPoll
    const a = process.hrtime.bigint()
    sink.offer(batch)
    offerNs += process.hrtime.bigint() - a
  } else await sleep(1)
}
const ms = performance.now() - t0
const delivered = sink.stats().delivered - d0
const cpu = cpuS(process.cpuUsage(cpu0))
const prodT = threadCpu('tcpinfo-kafka')
const prod = prodT.all - prod0.all
const prodUser = prodT.user - prod0.user
await sink.close(30_000)
const s = sink.stats()
const kafka = {
  perPoll, lineBytes: line.length, compression, format, offeredPerS: rate || 'as fast as taken', seconds: +(ms / 1000).toFixed(2), delivered, dropped: s.dropped, undelivered: s.undelivered, requests: s.requests,
  recordsPerS: Math.round(delivered / (ms / 1000)),
  processCores: +(cpu / (ms / 1000)).toFixed(2), producerThreadCores: +(prod / (ms / 1000)).toFixed(2),
  usPerRecordProcess: +((cpu * 1e6) / delivered).toFixed(2), usPerRecordProducerThread: +((prod * 1e6) / delivered).toFixed(2), usPerRecordProducerUser: +((prodUser * 1e6) / delivered).toFixed(2),
  usPerRecordOffer: +(Number(offerNs) / 1e3 / delivered).toFixed(3),
}
console.log(JSON.stringify({ kafka }))

// --- Archive: the same polls, files in a temp dir ---
const out = mkdtempSync(join(tmpdir(), 'tcpinfo-bench-archive-'))
try {
  const w = new ArchiveWriter({ output: out, uuidPrefix: prefix, flushIntervalMs: 1000 })
  const records = Math.min(delivered, 400_000)
  const a0 = process.cpuUsage()
  const at = performance.now()
  let written = 0
  while (written < records) {
    // Keep at most ~16 polls queued in front of the writer thread (no poll over its limits).
    while (w.stats().queueDepth >= 16) await sleep(1)
    w.write(batch)
    written += perPoll
  }
  await w.close(60_000)
  const acpu = cpuS(process.cpuUsage(a0))
  const ams = performance.now() - at
  const st = w.stats()
  const n = st.recordsWritten
  console.log(JSON.stringify({ archive: { offered: written, recordsWritten: n, recordsDropped: st.recordsDropped, seconds: +(ams / 1000).toFixed(2), recordsPerS: Math.round(n / (ams / 1000)), usPerRecordProcess: +((acpu * 1e6) / n).toFixed(2) } }))
} finally {
  rmSync(out, { recursive: true, force: true })
}
process.exit(0)
