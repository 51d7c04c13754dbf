#!/usr/bin/env node
// Contender (e) of the collector benchmarks: the real collector (`Collector` from dist/, the
// class `tcpinfo collect` runs) archiving every changed connection into a scratch directory.
//
// usage: node bench/collector_contender.mjs [--polls 100] [--warmup 1] [--warmup-ms 2500]
//                                           [--interval-ms 10] [--output DIR] [--keep]
//                                           [--max-open-files N] [--flush-ms 1000]
//                                           [--max-new-files 20000] [--exclude-local]
//                                           [--dist PATH/index.js] [--announce]
//
// The collector runs with its defaults (open-file cap 4096, flush every 1 s, level 1) except
// that local exclusion is off unless --exclude-local (the farm's sockets are loopback ones by
// default). Measurement hooks `ArchiveWriter.prototype.write` (one call per poll; nothing in
// the collector is changed): the window opens after the first poll's records (every socket
// opened: start-up) are all written, and at the first poll after --warmup polls AND
// --warmup-ms (so the first poll's "opened" records have been flushed), on a flush boundary
// (the writer's frame count just moved; waited for at most one flush interval), and closes on
// the first flush boundary after --polls more polls, so it holds whole flush cycles (and
// every poll in it is counted: `polls` >= --polls). Over the
// window: `process.cpuUsage()` (all threads), per-thread CPU from /proc/self/task (the poller
// thread, the archive writer thread, the rest: JS, V8, libuv), the writer's counters (records
// written, compressed bytes, frames, files). Prints one JSON line of the shared shape
// (bench/src/report.rs) plus `archive_*`, `writer_*`, `whole_run_*` fields. Wall fields are
// the native dump time (`stats.dumpNanos`), as in node_contender.mjs.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir, release } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const TICK_NS = 1e9 / 100 // USER_HZ

function parseArgs(argv) {
  const o = {
    polls: 100, warmup: 1, 'warmup-ms': 2500, 'interval-ms': 10, output: '', keep: false,
    'max-open-files': 0, 'flush-ms': 1000, 'max-new-files': 20000, 'startup-timeout-s': 300, 'exclude-local': false, dist: resolve(here, '..', 'dist', 'index.js'), announce: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-h' || a === '--help') {
      process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(3, 8).map((l) => l.slice(3)).join('\n') + '\n')
      process.exit(0)
    }
    if (a === '--keep' || a === '--announce' || a === '--exclude-local') { o[a.slice(2)] = true; continue }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a)
    if (!m || !(m[1] in o) || typeof o[m[1]] === 'boolean') throw new Error(`unknown argument ${JSON.stringify(a)}`)
    const v = m[2] ?? argv[++i]
    if (v === undefined) throw new Error(`--${m[1]} needs a value`)
    o[m[1]] = typeof o[m[1]] === 'number' ? Number(v) : v
  }
  for (const k of ['polls', 'warmup', 'warmup-ms', 'interval-ms', 'max-open-files', 'flush-ms', 'max-new-files', 'startup-timeout-s']) {
    if (!(o[k] >= 0) || !Number.isFinite(o[k])) throw new Error(`--${k} must be a non-negative number`)
  }
  return o
}

const status = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0)

/** CPU of this process's threads by role: {poller, writer, other} x {user, sys} in ns, plus `run` (schedstat, ns). */
function threadCpu() {
  const out = { poller: { user: 0, sys: 0, run: 0 }, writer: { user: 0, sys: 0, run: 0 }, other: { user: 0, sys: 0, run: 0 } }
  for (const tid of readdirSync('/proc/self/task')) {
    let stat, sched
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      sched = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8')
    } catch {
      continue // the thread ended
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const role = comm.startsWith('tcpinfo-poller') ? 'poller' : comm.startsWith('tcpinfo-archive') ? 'writer' : 'other'
    out[role].user += Number(f[11]) * TICK_NS
    out[role].sys += Number(f[12]) * TICK_NS
    out[role].run += Number(sched.split(' ')[0])
  }
  return out
}
const diffCpu = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, { user: b[k].user - a[k].user, sys: b[k].sys - a[k].sys, run: b[k].run - a[k].run }]))

function percentile(sorted, pct) {
  if (sorted.length === 0) return 0
  return sorted[Math.min(Math.max(Math.ceil((pct / 100) * sorted.length), 1), sorted.length) - 1]
}
const f3 = (v) => (Number.isFinite(v) ? Number(v.toFixed(3)) : null)

async function main() {
  const o = parseArgs(process.argv.slice(2))
  const distDir = dirname(o.dist)
  const { Collector } = await import(pathToFileURL(join(distDir, 'collector', 'collector.js')).href)
  const { ArchiveWriter } = await import(pathToFileURL(join(distDir, 'archive', 'writer.js')).href)
  const { readRawConfig, resolveCollectorConfig } = await import(pathToFileURL(join(distDir, 'config', 'collector-config.js')).href)
  const { createLogger } = await import(pathToFileURL(join(distDir, 'log.js')).href)
  const output = o.output || mkdtempSync(join(tmpdir(), 'tcpinfo-bench-collector-'))
  const rssStart = status('VmRSS')
  // Where the peak is: the highest RSS sampled every 50 ms in each phase (start-up = the
  // warm-up, the measured window, the stop).
  const rssPeak = { startup: 0, window: 0, stop: 0 }
  let rssPhase = 'startup'
  const rssSampler = setInterval(() => { rssPeak[rssPhase] = Math.max(rssPeak[rssPhase], status('VmRSS')) }, 50)

  // The window, driven from the writer's write() (once per poll, on the JS thread).
  const wall = []
  const sockets = []
  let n = 0
  let firstBatchAt = 0n
  let firstRecords = 0
  let startupMs = null
  let startupTimedOut = false
  let phase = 'warmup' // warmup -> align-start -> window -> align-end -> done
  let alignSince = 0n
  let lastFrames = 0
  let start = null
  let end = null
  let records = 0
  let lineBytes = 0
  let skipped = 0
  let tracked = 0
  let recv = 0
  let bytes = 0
  let windowPolls = 0
  let truncated = null
  let resolveDone
  const windowDone = new Promise((r) => { resolveDone = r })
  const snapshot = (w) => ({ t: process.hrtime.bigint(), cpu: process.cpuUsage(), threads: threadCpu(), stats: w.stats(), faults: process.resourceUsage().minorPageFault, rss: status('VmRSS') })
  const flushMs = BigInt(Math.round(o['flush-ms'] * 1.2)) * 1_000_000n
  const origWrite = ArchiveWriter.prototype.write
  ArchiveWriter.prototype.write = function write(batch) {
    const room = origWrite.call(this, batch)
    n++
    const now = process.hrtime.bigint()
    if (n === 1) {
      firstBatchAt = now
      firstRecords = batch.size
    }
    // Start-up is over once the first poll's records (every socket opened) are on disk:
    // creating one file costs ~0.8 ms of kernel time on this VM's ext4, so at 10k sockets
    // that takes seconds. Waited for at most --startup-timeout-s (then flagged).
    if (phase === 'warmup' && n >= o.warmup && now - firstBatchAt >= BigInt(o['warmup-ms']) * 1_000_000n &&
      (this.stats().recordsWritten >= firstRecords || (startupTimedOut = now - firstBatchAt >= BigInt(o['startup-timeout-s']) * 1_000_000_000n))) {
      startupMs = Number(now - firstBatchAt) / 1e6
      phase = 'align-start'
      alignSince = now
      lastFrames = this.stats().framesWritten
      return room
    }
    if (phase === 'align-start') {
      if (this.stats().framesWritten === lastFrames && now - alignSince < flushMs) return room
      phase = 'window'
      rssPhase = 'window'
      start = snapshot(this)
      if (o.announce) process.stdout.write('ready\n')
      return room
    }
    if (phase === 'window' || phase === 'align-end') {
      // Every poll after the start snapshot up to and including the end one. A large poll
      // comes in parts; only its last part carries the poll's stats, and the poll counts once.
      records += batch.size
      lineBytes += batch.lines.byteLength
      if (batch.more) return room
      windowPolls++
      wall.push(batch.stats.dumpNanos / 1e3)
      sockets.push(batch.stats.messages)
      skipped += batch.stats.skippedPolls
      tracked = batch.stats.tracked
      recv += batch.stats.recvCalls
      bytes += batch.stats.bytes
      // Safety: more connections changing than the open-file cap can make nearly every record
      // a new sequence file; the window ends early (reported) before the disk fills.
      if (windowPolls % 10 === 0 && this.stats().filesOpened - start.stats.filesOpened > o['max-new-files']) {
        truncated = `more than ${o['max-new-files']} new files in ${windowPolls} polls`
        end = snapshot(this)
        phase = 'done'
        resolveDone()
        return room
      }
      if (phase === 'align-end') {
        if (this.stats().framesWritten === lastFrames && now - alignSince < flushMs) return room
        end = snapshot(this)
        phase = 'done'
        resolveDone()
      } else if (windowPolls >= o.polls) {
        phase = 'align-end'
        alignSince = now
        lastFrames = this.stats().framesWritten
      }
    }
    return room
  }

  const args = [`--output=${output}`, `--interval=${o['interval-ms']}ms`, ...(o['max-open-files'] ? [`--max-open-files=${o['max-open-files']}`] : []), `--flush-interval=${o['flush-ms']}ms`, `--exclude-local=${o['exclude-local']}`, '--log-level=warn']
  const { config } = resolveCollectorConfig(readRawConfig(args, {}))
  const logLines = []
  const log = createLogger((line) => { if (logLines.length < 20) logLines.push(line.trim()) }, { level: 'warn' })
  const collector = new Collector(config, log)
  let failed = null
  collector.done.catch((e) => { if (!end) { failed = e; resolveDone() } })
  await windowDone
  rssPhase = 'stop'
  const stopT0 = process.hrtime.bigint()
  // A stop that misses its deadline is a result (reported), not a failure of the measurement.
  let stopError = null
  await collector.stop().catch((e) => { stopError = `${e?.code ?? ''} ${e?.message ?? e}`.trim() })
  const stopMs = Number(process.hrtime.bigint() - stopT0) / 1e6
  clearInterval(rssSampler)
  if (failed || !end) throw new Error(`the collector stopped before the window closed: ${failed?.message ?? 'no end'}; log: ${logLines.join(' | ')}`)
  const whole = process.cpuUsage()
  const final = collector.stats()

  const userNs = (end.cpu.user - start.cpu.user) * 1000
  const sysNs = (end.cpu.system - start.cpu.system) * 1000
  const th = diffCpu(start.threads, end.threads)
  const polls = windowPolls
  const socketPolls = sockets.reduce((a, b) => a + b, 0)
  const per = (v) => (socketPolls ? f3(v / socketPolls) : null)
  const sorted = [...wall].sort((a, b) => a - b)
  const elapsedS = Number(end.t - start.t) / 1e9
  const written = end.stats.recordsWritten - start.stats.recordsWritten
  const compressed = end.stats.bytesCompressed - start.stats.bytesCompressed
  const perRecord = (v) => (written ? f3(v / written) : null)
  const report = {
    tool: 'tcpinfo-collector',
    kernel: release(),
    polls,
    interval_ms: o['interval-ms'],
    sockets_per_poll: f3(polls ? socketPolls / polls : 0),
    sockets_min: polls ? Math.min(...sockets) : 0,
    sockets_max: polls ? Math.max(...sockets) : 0,
    wall_us_p50: f3(percentile(sorted, 50)),
    wall_us_p99: f3(percentile(sorted, 99)),
    wall_us_max: f3(sorted.at(-1) ?? 0),
    user_ns_per_socket: per(userNs),
    sys_ns_per_socket: per(sysNs),
    recvmsg_per_socket: per(recv),
    bytes_per_socket: per(bytes),
    user_ns_total: userNs,
    sys_ns_total: sysNs,
    recvmsg_total: recv,
    bytes_total: bytes,
    wall_is: 'native dump time (stats.dumpNanos)',
    elapsed_s: f3(elapsedS),
    window_truncated: truncated,
    startup_records: firstRecords,
    startup_ms: f3(startupMs),
    startup_timed_out: startupTimedOut,
    polls_per_s: f3(polls / elapsedS),
    cpu_ms_per_poll: f3((userNs + sysNs) / 1e6 / polls),
    records_total: records,
    records_per_poll: f3(polls ? records / polls : 0),
    line_bytes_total: lineBytes,
    skipped_polls: skipped,
    tracked,
    // Per thread over the window (stat: 10 ms ticks; run: schedstat ns, user+sys).
    poller_run_ns: th.poller.run,
    writer_run_ns: th.writer.run,
    other_run_ns: th.other.run,
    writer_user_ns: th.writer.user,
    writer_sys_ns: th.writer.sys,
    // The archive over the window (whole flush cycles).
    archive_records_written: written,
    archive_bytes_compressed: compressed,
    archive_bytes_uncompressed: end.stats.bytesUncompressed - start.stats.bytesUncompressed,
    archive_frames: end.stats.framesWritten - start.stats.framesWritten,
    archive_files_opened: end.stats.filesOpened - start.stats.filesOpened,
    archive_bytes_per_record: perRecord(compressed),
    writer_user_ns_per_record: perRecord(th.writer.user),
    writer_sys_ns_per_record: perRecord(th.writer.sys),
    writer_run_ns_per_record: perRecord(th.writer.run),
    minor_faults_per_poll: f3((end.faults - start.faults) / polls),
    // The whole run, start-up (module load, first poll: every socket opened) and stop included.
    whole_run_user_ns: whole.user * 1000,
    whole_run_sys_ns: whole.system * 1000,
    whole_run_s: f3(process.uptime()),
    stop_ms: f3(stopMs),
    stop_error: stopError,
    final_files_opened: final.archive.filesOpened,
    max_open_files: config.maxOpenFiles,
    final_records_written: final.archive.recordsWritten,
    final_records_dropped: final.archive.recordsDropped,
    final_bytes_compressed: final.archive.bytesCompressed,
    write_errors: Object.values(final.archive.writeErrors).reduce((a, b) => a + b, 0),
    waits_for_writer: final.waitsForWriter,
    rss_kb_start: rssStart,
    rss_kb_after_warmup: start.rss,
    rss_kb_window_end: end.rss,
    rss_kb_peak_startup: rssPeak.startup,
    rss_kb_peak_window: rssPeak.window,
    rss_kb_peak_stop: rssPeak.stop,
    // What of it is V8's: its heap and the external memory (batches' buffers) it tracks.
    ...(() => {
      const m = process.memoryUsage()
      return { v8_heap_used_kb: Math.round(m.heapUsed / 1024), v8_heap_total_kb: Math.round(m.heapTotal / 1024), v8_external_kb: Math.round(m.external / 1024) }
    })(),
    rss_kb: status('VmRSS'),
    rss_hwm_kb: status('VmHWM'),
    js_heap_used_bytes: process.memoryUsage().heapUsed,
    log_lines: logLines.length,
    log_tail: logLines.slice(-3),
    output: o.keep ? output : null,
    node: process.version,
  }
  process.stdout.write(JSON.stringify(report) + '\n')
  // Removing tens of thousands of files takes minutes on this ext4 (mounted with `discard`:
  // every unlink waits for its discard): a detached rm does it after this process is gone.
  if (!o.keep && !o.output) spawn('rm', ['-rf', output], { detached: true, stdio: 'ignore' }).unref()
}

main().catch((e) => {
  process.stderr.write(`collector_contender: ${e?.stack ?? e}\n`)
  process.exit(1)
})
