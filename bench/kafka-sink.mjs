// Throughput of the Kafka sink (issue 12) to a local broker: synthetic polls of real
// M-Lab ArchivalRecord lines pushed through KafkaSink.offer() as fast as it delivers.
//   BROKER=127.0.0.1:PORT node bench/kafka-sink.mjs [records-per-poll] [seconds] [compression]
import { spawnSync } from 'node:child_process'
import { KafkaSink } from '../dist/sinks/kafka-sink.js'

const broker = process.env.BROKER
if (!broker) throw new Error('BROKER=host:port is required (scripts/kafka.sh start DIR)')
const perPoll = Number(process.argv[2] ?? 2000)
const seconds = Number(process.argv[3] ?? 10)
const compression = process.argv[4] ?? 'none'
const fixture = new URL('../crates/tcpinfo-core/tests/fixtures/mlab/ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst', import.meta.url).pathname
const line = Buffer.from(`${spawnSync('zstd', ['-dcq', fixture], { encoding: 'utf8' }).stdout.split('\n')[1]}\n`)
const index = Buffer.alloc(perPoll * 32)
const lines = Buffer.alloc(perPoll * line.length)
for (let i = 0; i < perPoll; i++) {
  line.copy(lines, i * line.length)
  index[i * 32] = 1 // changed
  index[i * 32 + 1] = 1 // has record
  index.writeUInt32LE(i * line.length, i * 32 + 12)
  index.writeUInt32LE(line.length, i * 32 + 16)
  index.writeBigUInt64LE(BigInt(i), i * 32 + 24)
}
const batch = { index, lines, size: perPoll }
const sink = new KafkaSink({ brokers: [broker], topic: `bench-${process.pid}`, uuidPrefix: 'bench', compression, bufferBytes: 256 << 20 })
const cpu0 = process.cpuUsage()
const t0 = Date.now()
let offered = 0
while (Date.now() - t0 < seconds * 1000) {
  // Keep ~4 polls queued: the sink's pace, not the buffer, sets the rate.
  if (sink.counters().queuedItems < 4 * perPoll) {
    sink.offer(batch)
    offered += perPoll
  }
  await new Promise((r) => setImmediate(r))
}
await sink.close(30_000)
const ms = Date.now() - t0
const cpu = process.cpuUsage(cpu0)
const s = sink.stats()
const cpuS = (cpu.user + cpu.system) / 1e6
console.log(JSON.stringify({ perPoll, lineBytes: line.length, compression, seconds: ms / 1000, delivered: s.delivered, dropped: s.dropped, undelivered: s.undelivered, recordsPerS: Math.round(s.delivered / (ms / 1000)), cpuCores: +(cpuS / (ms / 1000)).toFixed(2), usPerRecord: +((cpuS * 1e6) / s.delivered).toFixed(2) }))
process.exit(0)
