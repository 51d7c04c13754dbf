#!/usr/bin/env node
// Contender (d) of the collector benchmarks: tcpinfo's poll through `watch()` in Node.
//
// usage: node bench/node_contender.mjs [--polls 100] [--interval-ms 10] [--warmup 1]
//                                      [--states 0xF37] [--ext 0xFF] [--families 4,6]
//                                      [--dist PATH/index.js] [--announce] [--report-all]
//                                      [--release 1|0]
//
// Iterates `watch({ intervalMs })` from the built package (`dist/`, `npm run build` first) and
// consumes every batch the way a minimal consumer does: walks `batch.connections`, counts
// their kinds and takes each one's ArchivalRecord line (a Buffer); nothing is decoded. After
// --warmup batches (the first opens and encodes every socket) it measures --polls batches:
// `process.cpuUsage()` over them (the whole process: the native poller thread, the JS thread,
// V8 and libuv), RSS and VmHWM. Prints one JSON line shaped like drain's
// (bench/src/report.rs). The wall-time fields are the native dump time (`stats.dumpNanos`):
// JS cannot time the poll itself, which runs on the poller thread.
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { release } from 'node:os'

const here = dirname(fileURLToPath(import.meta.url))

function parseArgs(argv) {
  const opts = {
    polls: 100,
    'interval-ms': 10,
    warmup: 1,
    states: '0xF37',
    ext: '0xFF',
    families: '4,6',
    dist: resolve(here, '..', 'dist', 'index.js'),
    announce: false,
    'report-all': false,
    release: 1,
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(3, 6).map((l) => l.slice(3)).join('\n') + '\n')
      process.exit(0)
    }
    if (arg === '--announce' || arg === '--report-all') {
      opts[arg.slice(2)] = true
      continue
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (!m || !(m[1] in opts)) throw new Error(`unknown argument ${JSON.stringify(arg)}`)
    const value = m[2] ?? argv[++i]
    if (value === undefined) throw new Error(`--${m[1]} needs a value`)
    opts[m[1]] = typeof opts[m[1]] === 'number' ? Number(value) : value
  }
  for (const k of ['polls', 'interval-ms', 'warmup']) {
    if (!Number.isInteger(opts[k]) || opts[k] < 0) throw new Error(`--${k} must be a non-negative integer`)
  }
  return opts
}

function procStatusKb(field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) : 0
}

function percentile(sorted, pct) {
  if (sorted.length === 0) return 0
  const idx = Math.min(Math.max(Math.ceil((pct / 100) * sorted.length), 1), sorted.length) - 1
  return sorted[idx]
}

const f3 = (v) => (Number.isFinite(v) ? Number(v.toFixed(3)) : null)

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const { watch } = await import(pathToFileURL(opts.dist).href)
  const families = opts.families.split(',').map((f) => ({ 4: 'inet', 6: 'inet6', inet: 'inet', inet6: 'inet6' })[f.trim()])
  if (families.some((f) => f === undefined)) throw new Error(`--families: use 4, 6 or 4,6`)
  const rssStart = procStatusKb('VmRSS')

  const w = watch({
    intervalMs: opts['interval-ms'],
    states: Number(opts.states),
    ext: Number(opts.ext),
    families,
    // --report-all: every tcp_info field counts, so every socket is reported every poll.
    ...(opts['report-all'] ? { change: { ignoreTcpInfoFields: [] } } : {}),
  })
  const wall = []
  const sockets = []
  const t = {
    records: 0, opened: 0, changed: 0, closed: 0, lineBytes: 0, framedBytes: 0, recvCalls: 0, bytes: 0,
    destroyEvents: 0, destroyOverruns: 0, skippedPolls: 0, malformed: 0, incomplete: 0, warnings: 0,
  }
  let seen = 0
  let tracked = 0
  let trackerBytes = 0
  let n = 0
  let cpu0
  let faults0 = 0
  let started
  let first = null
  let rssWarm = 0
  const t00 = process.hrtime.bigint()
  for await (const batch of w) {
    // Consume like a minimal consumer: walk the connections, touch each record's line.
    let records = 0
    let lineBytes = 0
    let opened = 0
    let changed = 0
    let closed = 0
    for (const c of batch.connections) {
      records++
      if (c.archivalLine) lineBytes += c.archivalLine.length
      if (c.kind === 'opened') opened++
      else if (c.kind === 'changed') changed++
      else closed++
    }
    // --release 1 (default): give the batch's memory back as a consumer done with it should
    // (Batch.release()); 0 leaves it to V8's GC, as before.
    if (opts.release) batch.release()
    // A large poll comes in parts sharing its seq; only the last part carries the poll's
    // stats (dump time, sockets, completeness). Parts add their records; the poll counts once.
    const addRecords = () => {
      t.records += records
      t.opened += opened
      t.changed += changed
      t.closed += closed
      t.lineBytes += lineBytes
      t.framedBytes += batch.byteLength
    }
    if (batch.more) {
      if (started !== undefined) addRecords()
      continue
    }
    n++
    if (n <= opts.warmup) {
      if (n === 1) first = { wallMs: Number(process.hrtime.bigint() - t00) / 1e6, records, framedBytes: batch.byteLength }
      if (n === opts.warmup) {
        rssWarm = procStatusKb('VmRSS')
        if (opts.announce) process.stdout.write('ready\n')
        cpu0 = process.cpuUsage()
        faults0 = process.resourceUsage().minorPageFault
        started = process.hrtime.bigint()
      }
      if (opts.polls === 0 && n === opts.warmup) break
      continue
    }
    wall.push(batch.stats.dumpNanos / 1e3)
    sockets.push(batch.stats.messages)
    seen += batch.socketsSeen
    tracked = batch.stats.tracked
    trackerBytes = batch.stats.trackerBytes ?? null
    addRecords()
    t.recvCalls += batch.stats.recvCalls
    t.bytes += batch.stats.bytes
    t.destroyEvents += batch.stats.destroyEvents
    t.destroyOverruns += batch.stats.destroyOverruns
    t.skippedPolls += batch.stats.skippedPolls
    t.malformed += batch.stats.malformed
    t.incomplete += batch.complete ? 0 : 1
    t.warnings += batch.warnings.length
    if (n >= opts.warmup + opts.polls) break
  }
  const cpu = process.cpuUsage(cpu0)
  const faults = process.resourceUsage().minorPageFault - faults0
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9
  w.close()

  const polls = wall.length
  const socketPolls = sockets.reduce((a, b) => a + b, 0)
  const perSocket = (v) => (socketPolls === 0 ? null : f3(v / socketPolls))
  const sorted = [...wall].sort((a, b) => a - b)
  const mean = polls === 0 ? 0 : socketPolls / polls
  const connS = mean * elapsedS
  const userNs = cpu.user * 1000
  const sysNs = cpu.system * 1000
  const report = {
    tool: 'tcpinfo-node',
    kernel: release(),
    polls,
    interval_ms: opts['interval-ms'],
    sockets_per_poll: f3(mean),
    sockets_min: polls ? Math.min(...sockets) : 0,
    sockets_max: polls ? Math.max(...sockets) : 0,
    wall_us_p50: f3(percentile(sorted, 50)),
    wall_us_p99: f3(percentile(sorted, 99)),
    wall_us_max: f3(sorted.at(-1) ?? 0),
    user_ns_per_socket: perSocket(userNs),
    sys_ns_per_socket: perSocket(sysNs),
    recvmsg_per_socket: perSocket(t.recvCalls),
    bytes_per_socket: perSocket(t.bytes),
    user_ns_total: userNs,
    sys_ns_total: sysNs,
    recvmsg_total: t.recvCalls,
    bytes_total: t.bytes,
    wall_is: 'native dump time (stats.dumpNanos)',
    elapsed_s: f3(elapsedS),
    sockets_seen_total: seen,
    records_total: t.records,
    records_per_poll: f3(polls ? t.records / polls : 0),
    opened_total: t.opened,
    changed_total: t.changed,
    closed_total: t.closed,
    framed_bytes_total: t.framedBytes,
    line_bytes_total: t.lineBytes,
    records_per_conn_s: connS > 0 ? Number((t.records / connS).toFixed(4)) : null,
    line_bytes_per_conn_s: connS > 0 ? Number((t.lineBytes / connS).toFixed(4)) : null,
    destroy_events: t.destroyEvents,
    destroy_overruns: t.destroyOverruns,
    skipped_polls: t.skippedPolls,
    malformed: t.malformed,
    incomplete_polls: t.incomplete,
    warnings: t.warnings,
    minor_faults: faults,
    minor_faults_per_poll: polls ? f3(faults / polls) : null,
    tracked,
    tracker_bytes: trackerBytes,
    rss_kb_start: rssStart,
    rss_kb_after_warmup: rssWarm,
    rss_kb: procStatusKb('VmRSS'),
    rss_hwm_kb: procStatusKb('VmHWM'),
    js_heap_used_bytes: process.memoryUsage().heapUsed,
    warmup_polls: opts.warmup,
    first_batch_ms: first ? f3(first.wallMs) : null,
    first_poll_records: first?.records ?? null,
    warmup_framed_bytes: first?.framedBytes ?? null,
    node: process.version,
  }
  process.stdout.write(JSON.stringify(report) + '\n')
}

main().catch((e) => {
  process.stderr.write(`node_contender: ${e?.stack ?? e}\n`)
  process.exit(1)
})
