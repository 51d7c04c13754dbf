/**
 * The Kafka sink (issue 12) against a real single-node Apache Kafka broker (scripts/kafka.sh,
 * KRaft, from Maven Central's jars): `tcpinfo collect --kafka-brokers` with real traffic in
 * a network namespace; a consumer in the test reads the topic and must get exactly the
 * records the archive holds for the same run (same UUIDs, same count, same lines, so the
 * same final counters), in order per connection, with the host / netns / kind headers.
 * Skips (saying so) only when Java or Maven are missing.
 */
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { hostname, tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import test, { type ExecutionContext } from 'ava'
import { Kafka, logLevel } from 'kafkajs'

import type { Batch } from '../src/api/batch.js'
import { readArchive } from '../src/archive/read-archive.js'
import { KafkaSink } from '../src/sinks/kafka-sink.js'
import { readRawConfig, resolveCollectorConfig } from '../src/config/collector-config.js'
import { KAFKA_SH, kafkaBrokerForFile } from './helpers/kafka-broker.js'
import { archiveFiles, sample, startCollector, stopCollector } from './helpers/collector.js'
import { type NetnsPair, netnsPair, nodeIn, runClients, SERVER } from './helpers/netns-pair.js'

const execFileAsync = promisify(execFile)
const PORT = 45_300
/** Offsets in struct tcp_info (KERNEL-UAPI.md). */
const TCPI_BYTES_ACKED = 120
const TCPI_BYTES_RECEIVED = 128

const { broker: B, serial } = kafkaBrokerForFile('kafka.spec')

interface ArchivalLine {
  Attributes: (string | null)[]
  RawIDM: string
}

/** Each connection's archived lines in order (sequence files in order), by UUID. */
function archiveLines(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const file of archiveFiles(dir).sort()) {
    const uuid = (/^(.+)\.\d{5}\.jsonl\.zst$/.exec(basename(file)) as RegExpExecArray)[1] as string
    const r = spawnSync('zstd', ['-dcq', file], { encoding: 'utf8', maxBuffer: 256 << 20 })
    if (r.status !== 0) throw new Error(`zstd -dc ${file}: ${r.stderr}`)
    const lines = r.stdout.split('\n').slice(1, -1)
    out.set(uuid, [...(out.get(uuid) ?? []), ...lines])
  }
  return out
}

interface Consumed {
  key: string
  value: string
  headers: Record<string, string>
  partition: number
  offset: bigint
}

/** Every message of `topic` (waits until the topic holds `atLeast`), ordered by partition and offset. */
async function consumeAll(topic: string, atLeast: number, timeoutMs = 60_000): Promise<{ messages: Consumed[]; total: number }> {
  const kafka = new Kafka({ clientId: 'tcpinfo-test', brokers: [B.address], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  let offsets: { partition: number; high: string; low: string }[] = []
  const deadline = Date.now() + timeoutMs
  let total = 0
  try {
    for (;;) {
      try {
        offsets = await admin.fetchTopicOffsets(topic)
      } catch (e) {
        // Just after a broker restart leadership may still be settling (NOT_LEADER_FOR_PARTITION).
        if (!(e as { retriable?: boolean }).retriable || Date.now() > deadline) throw e
        await new Promise((r) => setTimeout(r, 200))
        continue
      }
      total = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0)
      if (total >= atLeast || Date.now() > deadline) break
      await new Promise((r) => setTimeout(r, 200))
    }
  } finally {
    await admin.disconnect()
  }
  const consumer = kafka.consumer({ groupId: `tcpinfo-test-${topic}`, sessionTimeout: 30_000, heartbeatInterval: 1000 })
  const messages: Consumed[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    let done: () => void = () => {}
    const all = new Promise<void>((r) => (done = r))
    if (total === 0) done()
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {}
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v)
        messages.push({ key: String(message.key), value: String(message.value), headers, partition, offset: BigInt(message.offset) })
        if (messages.length >= total) done()
      },
    })
    await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`consumed ${messages.length} of ${total} within ${timeoutMs} ms`)), timeoutMs))])
  } finally {
    await consumer.disconnect()
  }
  messages.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : 1))
  return { messages, total }
}

async function createTopic(topic: string): Promise<void> {
  const admin = new Kafka({ clientId: 'tcpinfo-test', brokers: [B.address], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 1 }], waitForLeaders: true })
  } finally {
    await admin.disconnect()
  }
}


let subnet = 80
async function withPair(t: ExecutionContext): Promise<{ pair: NetnsPair; out: string }> {
  const tag = `kfk${process.pid % 10_000}${subnet}`
  const pair = netnsPair(tag, subnet++, { rate: '20mbit', limit: '60kb' })
  t.teardown(() => pair.destroy())
  const server = nodeIn(pair.b, SERVER(pair.addrB, PORT, 50_000))
  t.teardown(() => server.child.kill())
  await server.lines.next()
  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-kafka-out-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  return { pair, out }
}

serial('the topic holds exactly the archive\'s records: same UUIDs, count, lines and final counters, in order per connection, with headers', async (t) => {
  t.timeout(180_000)
  const { pair, out } = await withPair(t)
  const topic = `e2e-${process.pid}`
  await createTopic(topic)
  const c = await startCollector(['--output', out, '--netns', pair.pathA, '--prom', '127.0.0.1:0', '--flush-interval', '100ms', '--kafka-brokers', B.address, '--kafka-topic', topic])
  const reports = await runClients(pair, PORT, [1_000, 200_000, 1_500_000, 30_000, 700_000])
  await new Promise((r) => setTimeout(r, 300))
  await drained(c.prom as string)
  t.is(await stopCollector(c.child), 0, c.stderr())
  t.notRegex(c.stderr(), /not delivered/, c.stderr())

  const archive = archiveLines(out)
  const archived = [...archive.values()].reduce((n, l) => n + l.length, 0)
  t.true(archive.size >= reports.length, `${archive.size} connections archived`)
  const { messages, total } = await consumeAll(topic, archived)
  t.is(total, archived, 'the topic holds as many records as the archive')

  const byKey = new Map<string, Consumed[]>()
  for (const m of messages) byKey.set(m.key, [...(byKey.get(m.key) ?? []), m])
  t.deepEqual([...byKey.keys()].sort(), [...archive.keys()].sort(), 'same UUIDs')
  for (const [uuid, lines] of archive) {
    const got = byKey.get(uuid) ?? []
    t.is(new Set(got.map((m) => m.partition)).size, 1, `${uuid}: one partition`)
    t.deepEqual(got.map((m) => m.value), lines, `${uuid}: the archive's lines, in order`)
    for (const m of got) {
      t.is(m.headers.host, hostname())
      t.is(m.headers.netns, pair.pathA)
    }
    // opened, changed…, closed; a connection that lived less than a poll is one close.
    const kinds = got.map((m) => m.headers.kind)
    const expected = kinds.length === 1 ? ['closed'] : ['opened', ...Array<string>(kinds.length - 2).fill('changed'), 'closed']
    t.deepEqual(kinds, expected, `${uuid}: kinds`)
  }
  // The final counters the endpoints counted are in each connection's last Kafka record.
  for (const rep of reports) {
    const last = [...byKey.values()]
      .map((ms) => JSON.parse((ms.at(-1) as Consumed).value) as ArchivalLine)
      .find((r) => {
        const idm = Buffer.from(r.RawIDM, 'base64')
        return idm.readUInt16BE(4) === rep.port && idm.readUInt16BE(6) === PORT
      })
    t.truthy(last, `a Kafka record series for client port ${rep.port}`)
    const info = Buffer.from(last?.Attributes[2] ?? '', 'base64')
    t.is(info.readBigUInt64LE(TCPI_BYTES_ACKED), BigInt(rep.sent + 2), `bytes_acked for ${rep.sent} sent`)
    t.is(info.readBigUInt64LE(TCPI_BYTES_RECEIVED), BigInt(rep.recv + 1), `bytes_received for ${rep.recv} received`)
  }
  // The values are archive lines the project's own reader decodes: every record, the
  // cookie of its key, the endpoints' final counters in each connection's last record.
  const jsonl = join(out, 'from-kafka.jsonl')
  writeFileSync(jsonl, messages.map((m) => `${m.value}\n`).join(''))
  const read = []
  for await (const c of readArchive(jsonl)) read.push(c)
  t.is(read.length, total, 'readArchive() reads every Kafka value')
  read.forEach((c, i) => t.true((messages[i] as Consumed).key.endsWith(`_${c.cookie.toString(16).toUpperCase().padStart(16, '0')}`), `record ${i}: cookie of its key`))
  for (const rep of reports) {
    const last = read.filter((c) => c.id?.srcPort === rep.port && c.id?.dstPort === PORT).at(-1)
    t.is(last?.tcpInfo?.bytesAcked, BigInt(rep.sent + 2), `decoded bytesAcked of client port ${rep.port}`)
  }
})

/** GET /metrics on a fresh connection (a kept-alive one may have been closed meanwhile). */
function scrapeOf(prom: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(`http://${prom}/metrics`, { agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve(body))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('metrics: timeout')))
    req.on('error', reject)
  })
}

/** Waits until `cond` holds (checked every 100 ms), failing after `ms`. */
async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function brokerStop(): Promise<void> {
  await execFileAsync('bash', [KAFKA_SH, 'stop', B.dir], { timeout: 60_000 })
}
async function brokerResume(): Promise<void> {
  await execFileAsync('bash', [KAFKA_SH, 'resume', B.dir], { encoding: 'utf8', timeout: 180_000 })
}

serial('broker stopped mid-run and restarted: polling goes on; a buffer large enough for the outage loses nothing', async (t) => {
  t.timeout(300_000)
  const { pair, out } = await withPair(t)
  const topic = `outage-${process.pid}`
  await createTopic(topic)
  const c = await startCollector(['--output', out, '--netns', pair.pathA, '--prom', '127.0.0.1:0', '--flush-interval', '100ms', '--kafka-brokers', B.address, '--kafka-topic', topic])
  t.teardown(() => void stopCollector(c.child, 'SIGKILL'))
  const prom = c.prom as string
  const scrape = (p: string): Promise<string> => scrapeOf(p).catch((e: Error) => Promise.reject(new Error(`${e.message}: collector exit ${c.child.exitCode}: ${c.stderr()}`)))
  const before = await runClients(pair, PORT, [1_000, 100_000])
  await until('the first records reach the broker', async () => (await consumeAllCount(topic)) > 0)
  await brokerStop()
  let resumed = false
  t.teardown(async () => {
    if (!resumed) await brokerResume()
  })
  const polls0 = sample(await scrape(prom), 'tcpinfo_polls_total') ?? 0
  const during = await runClients(pair, PORT, [2_000, 300_000, 50_000])
  await new Promise((r) => setTimeout(r, 1000))
  const polls1 = sample(await scrape(prom), 'tcpinfo_polls_total') ?? 0
  t.true(polls1 - polls0 >= 20, `polling went on while the broker was away: ${polls1 - polls0} polls`)
  t.true((sample(await scrape(prom), 'tcpinfo_sink_queued_bytes{sink="kafka"}') ?? 0) > 0, 'records queued during the outage')
  await brokerResume()
  resumed = true
  await until('the Kafka queue drains after the restart', async () => sample(await scrape(prom), 'tcpinfo_sink_queued_bytes{sink="kafka"}') === 0, 120_000)
  t.is(sample(await scrape(prom), 'tcpinfo_sink_dropped_records_total{sink="kafka"}'), 0, 'nothing dropped')
  t.is(await stopCollector(c.child), 0, c.stderr())

  const archive = archiveLines(out)
  t.true(archive.size >= before.length + during.length)
  const archived = [...archive.values()].reduce((n, l) => n + l.length, 0)
  const { messages } = await consumeAll(topic, archived)
  // At least once: a send cut by the outage may be repeated; nothing is lost and each
  // connection's records come first in their order.
  const byKey = new Map<string, string[]>()
  for (const m of messages) byKey.set(m.key, [...(byKey.get(m.key) ?? []), m.value])
  t.deepEqual([...byKey.keys()].sort(), [...archive.keys()].sort(), 'same UUIDs')
  let duplicates = 0
  for (const [uuid, lines] of archive) {
    const got = byKey.get(uuid) ?? []
    const firsts = [...new Set(got)]
    duplicates += got.length - firsts.length
    t.deepEqual(firsts, lines, `${uuid}: every archived line, in order`)
  }
  t.log(`${archived} records, ${duplicates} repeated after the outage`)
})

serial('broker away with a tiny buffer: the oldest records are dropped and counted, polling and the archive go on', async (t) => {
  t.timeout(300_000)
  const { pair, out } = await withPair(t)
  const topic = `tiny-${process.pid}`
  await createTopic(topic)
  const c = await startCollector(['--output', out, '--netns', pair.pathA, '--prom', '127.0.0.1:0', '--flush-interval', '100ms', '--kafka-brokers', B.address, '--kafka-topic', topic, '--kafka-buffer-bytes', '4096'])
  t.teardown(() => void stopCollector(c.child, 'SIGKILL'))
  const prom = c.prom as string
  const scrape = (p: string): Promise<string> => scrapeOf(p).catch((e: Error) => Promise.reject(new Error(`${e.message}: collector exit ${c.child.exitCode}: ${c.stderr()}`)))
  await brokerStop()
  let resumed = false
  t.teardown(async () => {
    if (!resumed) await brokerResume()
  })
  const polls0 = sample(await scrape(prom), 'tcpinfo_polls_total') ?? 0
  await runClients(pair, PORT, [2_000, 300_000, 50_000, 400_000])
  await until('drops counted', async () => (sample(await scrape(prom), 'tcpinfo_sink_dropped_records_total{sink="kafka"}') ?? 0) > 0)
  // Drops come with the first records (the native producer counts them at once): give the
  // poller the same 1 s as the outage test before counting its polls.
  await new Promise((r) => setTimeout(r, 1000))
  const polls1 = sample(await scrape(prom), 'tcpinfo_polls_total') ?? 0
  t.true(polls1 - polls0 >= 20, `polling went on: ${polls1 - polls0} polls`)
  t.true((sample(await scrape(prom), 'tcpinfo_sink_queued_bytes{sink="kafka"}') ?? 0) <= 4096 + 4096, 'the queue stays within its bound (plus one record)')
  await brokerResume()
  resumed = true
  await until('the Kafka queue drains after the restart', async () => sample(await scrape(prom), 'tcpinfo_sink_queued_bytes{sink="kafka"}') === 0, 120_000)
  t.is(await stopCollector(c.child), 0, c.stderr())
  const archive = archiveLines(out)
  const archived = [...archive.values()].reduce((n, l) => n + l.length, 0)
  t.true(archive.size >= 4, 'the archive holds every connection')
  const delivered = await consumeAllCount(topic)
  t.true(delivered > 0 && delivered < archived, `${delivered} of ${archived} records delivered`)
})

/** Records in `topic` now (high minus low watermarks). */
async function consumeAllCount(topic: string): Promise<number> {
  const admin = new Kafka({ clientId: 'tcpinfo-test', brokers: [B.address], logLevel: logLevel.NOTHING, retry: { retries: 1 } }).admin()
  try {
    await admin.connect()
    const offsets = await admin.fetchTopicOffsets(topic)
    return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0)
  } catch {
    return 0
  } finally {
    await admin.disconnect()
  }
}

test('--kafka-* flags and their env variables parse; bad values are refused naming the flag', (t) => {
  const cfg = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveCollectorConfig(readRawConfig(argv, env)).config
  const d = cfg([])
  t.deepEqual([d.kafkaBrokers, d.kafkaTopic, d.kafkaFormat, d.kafkaCompression, d.kafkaBufferBytes, d.kafkaSample], [[], 'tcpinfo', 'archival', 'none', 64 << 20, 'all'])
  const c = cfg(['--kafka-brokers', 'k1:9092,10.0.0.1:9093', '--kafka-brokers', '[::1]:9094', '--kafka-topic', 'tcp.info', '--kafka-format', 'decoded', '--kafka-compression', 'gzip', '--kafka-sample', '10'])
  t.deepEqual(c.kafkaBrokers, ['k1:9092', '10.0.0.1:9093', '[::1]:9094'])
  t.deepEqual([c.kafkaTopic, c.kafkaFormat, c.kafkaCompression, c.kafkaSample], ['tcp.info', 'decoded', 'gzip', '10'])
  for (const codec of ['lz4', 'zstd', 'gzip', 'none']) t.is(cfg(['--kafka-compression', codec]).kafkaCompression, codec)
  const sec = cfg(['--kafka-tls-ca', '/ca.pem', '--kafka-tls-cert', '/c.pem', '--kafka-tls-key', '/k.pem', '--kafka-sasl-mechanism', 'SCRAM-SHA-512', '--kafka-sasl-username', 'u'], { KAFKA_SASL_PASSWORD: 'p' })
  t.deepEqual([sec.kafkaTlsCa, sec.kafkaTlsCert, sec.kafkaTlsKey, sec.kafkaSaslMechanism, sec.kafkaSaslUsername, sec.kafkaSaslPassword], ['/ca.pem', '/c.pem', '/k.pem', 'SCRAM-SHA-512', 'u', 'p'])
  t.deepEqual([d.kafkaBatchBytes, d.kafkaLingerMs, d.kafkaTls, d.kafkaSaslMechanism], [512 << 10, 20, false, ''])
  const e = cfg([], { KAFKA_BROKERS: 'b:1', KAFKA_BUFFER_BYTES: '8192', KAFKA_SAMPLE: 'opens-closes' })
  t.deepEqual([e.kafkaBrokers, e.kafkaBufferBytes, e.kafkaSample], [['b:1'], 8192, 'opens-closes'])
  for (const [flag, bad] of [['--kafka-brokers', 'nohost'], ['--kafka-brokers', 'h:99999'], ['--kafka-topic', 'a b'], ['--kafka-format', 'avro'], ['--kafka-compression', 'snappy'], ['--kafka-buffer-bytes', '10'], ['--kafka-batch-bytes', '10'], ['--kafka-linger', '2m'], ['--kafka-sasl-mechanism', 'GSSAPI'], ['--kafka-tls-cert', '/x.pem'], ['--kafka-sasl-username', 'u'], ['--kafka-sample', '0'], ['--kafka-sample', 'some']] as const) {
    const err = t.throws(() => cfg([flag, bad]), undefined, `${flag} ${bad}`)
    t.regex(err?.message ?? '', new RegExp(flag.slice(2)), `${flag} ${bad}: ${err?.message}`)
  }
})

serial('--kafka-format decoded: flat JSON with a schema version, key = uuid, final counters as the endpoints counted', async (t) => {
  t.timeout(180_000)
  const { pair, out } = await withPair(t)
  const topic = `decoded-${process.pid}`
  await createTopic(topic)
  const c = await startCollector(['--output', out, '--netns', pair.pathA, '--prom', '127.0.0.1:0', '--flush-interval', '100ms', '--kafka-brokers', B.address, '--kafka-topic', topic, '--kafka-format', 'decoded'])
  const reports = await runClients(pair, PORT, [20_000, 400_000])
  await new Promise((r) => setTimeout(r, 300))
  await drained(c.prom as string)
  t.is(await stopCollector(c.child), 0, c.stderr())
  const archive = archiveLines(out)
  const archived = [...archive.values()].reduce((n, l) => n + l.length, 0)
  const { messages, total } = await consumeAll(topic, archived)
  t.is(total, archived)
  const objs = messages.map((m) => ({ m, o: JSON.parse(m.value) as Record<string, unknown> }))
  for (const { m, o } of objs) {
    t.is(o.schema, 1)
    t.is(o.uuid, m.key)
    t.is(o.kind, m.headers.kind)
    for (const v of Object.values(o)) t.true(v === null || typeof v !== 'object' || Array.isArray(v), 'flat')
  }
  for (const rep of reports) {
    const closed = objs.find(({ o }) => o.kind === 'closed' && o.id_srcPort === rep.port && o.id_dstPort === PORT)?.o
    t.truthy(closed, `the close of client port ${rep.port}`)
    t.is(String(closed?.tcpInfo_bytesAcked), String(rep.sent + 2))
    t.is(String(closed?.tcpInfo_bytesReceived), String(rep.recv + 1))
  }
})

serial('--kafka-sample opens-closes exports only the opens and closes; the archive stays complete', async (t) => {
  t.timeout(180_000)
  const { pair, out } = await withPair(t)
  const topic = `sample-${process.pid}`
  await createTopic(topic)
  const c = await startCollector(['--output', out, '--netns', pair.pathA, '--prom', '127.0.0.1:0', '--flush-interval', '100ms', '--kafka-brokers', B.address, '--kafka-topic', topic, '--kafka-sample', 'opens-closes'])
  await runClients(pair, PORT, [300_000, 1_000_000])
  await new Promise((r) => setTimeout(r, 300))
  await drained(c.prom as string)
  t.is(await stopCollector(c.child), 0, c.stderr())
  const archive = archiveLines(out)
  const archived = [...archive.values()].reduce((n, l) => n + l.length, 0)
  // Each connection: its first and last archived record (one when it lived less than a poll).
  const expected = [...archive.values()].reduce((n, l) => n + Math.min(2, l.length), 0)
  t.true(archived > expected, `the archive holds changes too (${archived} records)`)
  const { messages, total } = await consumeAll(topic, expected)
  t.is(total, expected)
  for (const [uuid, lines] of archive) {
    const got = messages.filter((m) => m.key === uuid)
    t.deepEqual(got.map((m) => m.value), lines.length === 1 ? lines : [lines[0], lines.at(-1)], uuid)
    t.true(got.every((m) => m.headers.kind !== 'changed'))
  }
})

/** Waits until the collector's Kafka queue is empty (so a loaded machine's stop deadline is not what is tested). */
async function drained(prom: string): Promise<void> {
  await until('the Kafka queue to drain', async () => sample(await scrapeOf(prom), 'tcpinfo_sink_queued_bytes{sink="kafka"}') === 0, 60_000)
}

test.serial('no broker reachable: SIGTERM still exits within 2 s, reporting how many records were not delivered', async (t) => {
  t.timeout(120_000)
  const { pair, out } = await withPair(t)
  // Port 1 on loopback: connection refused, at once and every time.
  const c = await startCollector(['--output', out, '--netns', pair.pathA, '--prom', '', '--flush-interval', '100ms', '--kafka-brokers', '127.0.0.1:1', '--kafka-topic', 'nowhere'])
  await runClients(pair, PORT, [10_000, 100_000])
  await new Promise((r) => setTimeout(r, 300))
  const t0 = Date.now()
  t.is(await stopCollector(c.child), 0, c.stderr())
  const ms = Date.now() - t0
  t.true(ms < 2000, `exit took ${ms} ms`)
  const archived = [...archiveLines(out).values()].reduce((n, l) => n + l.length, 0)
  t.true(archived > 0)
  t.regex(c.stderr(), new RegExp(`error kafka: ${archived} records not delivered to nowhere before the stop deadline`), c.stderr())
})

test('KafkaSink refuses bad TLS and SASL options with ERR_CONFIG naming them (TLS/SASL are not exercised against a broker)', (t) => {
  const base = { brokers: ['127.0.0.1:1'], topic: 't', uuidPrefix: 'p' }
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ tls: { caFile: '/nonexistent/ca.pem' } }, /tls ca/],
    [{ tls: { caFile: KAFKA_SH } }, /tls ca/],
    [{ tls: { certFile: '/nonexistent/c.pem' } }, /tls/],
    [{ sasl: { mechanism: 'GSSAPI', username: 'u', password: 'p' } }, /sasl mechanism/],
    [{ sasl: { mechanism: 'PLAIN', username: '', password: 'p' } }, /sasl/],
    [{ compression: 'snappy' }, /compression/],
    [{ brokers: ['nohost'] }, /brokers/],
    [{ bufferBytes: 10 }, /bufferBytes/],
  ]
  for (const [extra, re] of cases) {
    const err = t.throws(() => new KafkaSink({ ...base, ...extra } as ConstructorParameters<typeof KafkaSink>[0]), undefined, JSON.stringify(extra)) as { code?: string; message: string } | undefined
    t.is(err?.code, 'ERR_CONFIG', JSON.stringify(extra))
    t.regex(err?.message ?? '', re, JSON.stringify(extra))
  }
})

/** A synthetic poll of `n` records of a real M-Lab line, distinct cookies. */
function syntheticBatch(n: number, seq: number): Batch {
  const fixture = fileURLToPath(new URL('../crates/tcpinfo-core/tests/fixtures/mlab/ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst', import.meta.url))
  const line = Buffer.from(`${spawnSync('zstd', ['-dcq', fixture], { encoding: 'utf8' }).stdout.split('\n')[1]}\n`)
  const index = Buffer.alloc(n * 32)
  const lines = Buffer.alloc(n * line.length)
  for (let i = 0; i < n; i++) {
    line.copy(lines, i * line.length)
    index[i * 32] = i % 3 === 0 ? 0 : 1
    index[i * 32 + 1] = 1
    index.writeUInt32LE(i * line.length, i * 32 + 12)
    index.writeUInt32LE(line.length, i * 32 + 16)
    index.writeBigUInt64LE(BigInt(seq * 100_000 + i), i * 32 + 24)
  }
  return { index, lines, payloads: Buffer.alloc(0), size: n, seq, timestampNs: BigInt(Date.now()) * 1_000_000n, uuidPrefix: 'synth', namespaces: [{ inode: 1, name: null, host: true, uuidTag: '' }] } as unknown as Batch
}

serial('compression zstd, lz4 and gzip: the broker accepts every record batch (it validates compressed batches)', async (t) => {
  t.timeout(120_000)
  for (const compression of ['zstd', 'lz4', 'gzip'] as const) {
    const topic = `codec-${compression}-${process.pid}`
    await createTopic(topic)
    const sink = new KafkaSink({ brokers: [B.address], topic, uuidPrefix: 'synth', compression, lingerMs: 5 })
    for (let p = 0; p < 5; p++) t.true(sink.offer(syntheticBatch(400, p)))
    await sink.close(30_000)
    const s = sink.stats()
    t.deepEqual([s.queued, s.delivered, s.dropped, s.undelivered, s.partitions], [2000, 2000, 0, 0, 4], compression)
    t.is(await consumeAllCount(topic), 2000, `${compression}: records in the topic`)
  }
})
