#!/usr/bin/env node
// Contender (f) of the collector benchmarks: M-Lab's tcp-info itself (optional; its binary is
// not part of this repository: see docs/BENCHMARKS.md "Collector (issue 9)" for building it).
//
// usage: node bench/mlab_contender.mjs --mlab-bin PATH [--window-s 5] [--settle-s 2]
//                                      [--setup-timeout-s 120] [--metrics-port 9990]
//                                      [--output DIR] [--keep] [--announce]
//
// Starts `PATH -output DIR -prometheusx.listen-address=127.0.0.1:PORT` (it needs `zstd` on
// PATH: one external zstd process per archived connection), waits until its set of zstd
// children has stopped growing for --settle-s (every connection's file is open), then
// measures its steady state over --window-s: CPU of the tcp-info process from
// /proc/PID/stat (utime, stime; 10 ms ticks), CPU of its zstd children (summed over the
// children alive at both ends of the window; schedstat ns, exact for one-thread zstd), polls from its own Prometheus histogram
// (`tcpinfo_polling_interval_histogram`: count and sum, so the mean poll period shows whether
// it held its 10 ms interval), its open descriptors and RSS. Sockets per poll: `TCP: inuse`
// of /proc/net/sockstat (this network namespace; listeners included). Prints one JSON line of
// the shared shape (bench/src/report.rs). If tcp-info dies (at 10k connections: the 20,000
// descriptor limit), it prints a report with `failed` and the tail of its log, exit status 0.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'

const TICK_NS = 1e9 / 100 // USER_HZ

function parseArgs(argv) {
  const o = { 'mlab-bin': '', 'window-s': 5, 'settle-s': 2, 'setup-timeout-s': 120, 'metrics-port': 9990, output: '', keep: false, announce: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--keep' || a === '--announce') { o[a.slice(2)] = true; continue }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a)
    if (!m || !(m[1] in o) || typeof o[m[1]] === 'boolean') throw new Error(`unknown argument ${JSON.stringify(a)}`)
    const v = m[2] ?? argv[++i]
    if (v === undefined) throw new Error(`--${m[1]} needs a value`)
    o[m[1]] = typeof o[m[1]] === 'number' ? Number(v) : v
  }
  if (!o['mlab-bin']) throw new Error('--mlab-bin PATH is required')
  return o
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const f3 = (v) => (Number.isFinite(v) ? Number(v.toFixed(3)) : null)

/** utime, stime (ns), ppid, rss of one process, or null if gone. */
function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    let run = null
    try {
      run = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) // main thread, ns
    } catch {}
    return { ppid: Number(f[1]), user: Number(f[11]) * TICK_NS, sys: Number(f[12]) * TICK_NS, run, rssKb: Number(f[21]) * 4 }
  } catch {
    return null
  }
}

/** The children of `pid` (its zstd processes) and their stats. */
function children(pid) {
  const out = new Map()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    const st = procStat(d)
    if (st && st.ppid === pid) out.set(d, st)
  }
  return out
}

function status(pid, field) {
  try {
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
  } catch {
    return null
  }
}

function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return null
  }
}

const sockstatInuse = () => Number(/^TCP: inuse (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? NaN)

async function histogram(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const get = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
  return { count: get('tcpinfo_polling_interval_histogram_count'), sum: get('tcpinfo_polling_interval_histogram_sum') }
}

async function main() {
  const o = parseArgs(process.argv.slice(2))
  const output = o.output || mkdtempSync(join(tmpdir(), 'tcpinfo-bench-mlab-'))
  const t0 = process.hrtime.bigint()
  const child = spawn(o['mlab-bin'], [`-output=${output}`, `-prometheusx.listen-address=127.0.0.1:${o['metrics-port']}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d) => { log = (log + d).slice(-4000) })
  let exited = null
  child.on('exit', (code, signal) => { exited = { code, signal } })
  const pid = child.pid
  const base = { tool: 'mlab-tcp-info', kernel: release(), mlab_bin: o['mlab-bin'], interval_ms: 10 }
  const finish = (report) => {
    if (exited === null) child.kill('SIGKILL')
    if (!o.keep && !o.output) rmSync(output, { recursive: true, force: true })
    process.stdout.write(JSON.stringify(report) + '\n')
  }
  const failed = (why) => finish({ ...base, failed: why, exit: exited, setup_s: f3(Number(process.hrtime.bigint() - t0) / 1e9), fds: fdCount(pid), log_tail: log.trim().split('\n').slice(-4) })

  // Set-up: wait until the zstd children stop growing (every connection's file opened).
  let last = -1
  let stableSince = Date.now()
  const deadline = Date.now() + o['setup-timeout-s'] * 1000
  let kids = 0
  for (;;) {
    await sleep(250)
    if (exited) return failed(`tcp-info exited during set-up (${exited.code ?? exited.signal})`)
    kids = children(pid).size
    if (kids !== last) { last = kids; stableSince = Date.now() }
    else if (kids > 0 && Date.now() - stableSince >= o['settle-s'] * 1000) break
    if (Date.now() > deadline) return failed(`set-up did not settle within ${o['setup-timeout-s']} s (${kids} zstd children)`)
  }
  const setupS = Number(process.hrtime.bigint() - t0) / 1e9
  if (o.announce) process.stdout.write('ready\n')

  const snap = async () => ({ t: process.hrtime.bigint(), self: procStat(pid), kids: children(pid), h: await histogram(o['metrics-port']), sockets: sockstatInuse() })
  const a = await snap()
  await sleep(o['window-s'] * 1000)
  const b = await snap()
  if (exited || !a.self || !b.self) return failed(`tcp-info exited during the window (${exited?.code ?? exited?.signal})`)
  let kidUser = 0
  let kidSys = 0
  let kidRun = 0
  let kidRss = 0
  for (const [k, s] of b.kids) {
    kidRss += s.rssKb
    const s0 = a.kids.get(k)
    if (!s0) continue
    kidUser += s.user - s0.user
    kidSys += s.sys - s0.sys
    kidRun += s.run - s0.run
  }
  const polls = b.h.count - a.h.count
  const elapsedS = Number(b.t - a.t) / 1e9
  const sockets = (a.sockets + b.sockets) / 2
  const userNs = b.self.user - a.self.user
  const sysNs = b.self.sys - a.self.sys
  const perSocket = (v) => (polls && sockets ? f3(v / (polls * sockets)) : null)
  const meanPeriodMs = polls ? ((b.h.sum - a.h.sum) / polls) * 1000 : null
  finish({
    ...base,
    polls,
    sockets_per_poll: sockets,
    sockets_min: Math.min(a.sockets, b.sockets),
    sockets_max: Math.max(a.sockets, b.sockets),
    // No per-poll wall time from outside: the mean poll period (its own histogram) instead.
    wall_us_p50: meanPeriodMs === null ? null : f3(meanPeriodMs * 1000),
    wall_us_p99: null,
    wall_us_max: null,
    wall_is: "mean poll period from tcp-info's histogram (10 ms when it keeps its interval)",
    user_ns_per_socket: perSocket(userNs),
    sys_ns_per_socket: perSocket(sysNs),
    recvmsg_per_socket: null,
    bytes_per_socket: null,
    user_ns_total: userNs,
    sys_ns_total: sysNs,
    recvmsg_total: null,
    bytes_total: null,
    elapsed_s: f3(elapsedS),
    polls_per_s: f3(polls / elapsedS),
    mean_poll_period_ms: f3(meanPeriodMs),
    keeps_interval: meanPeriodMs !== null && meanPeriodMs < 11,
    cpu_ms_per_poll: polls ? f3((userNs + sysNs) / 1e6 / polls) : null,
    zstd_children: b.kids.size,
    zstd_children_at_start: a.kids.size,
    zstd_user_ns: kidUser,
    zstd_sys_ns: kidSys,
    // zstd is single-threaded: schedstat's run time is exact where 10 ms ticks round to 0.
    zstd_run_ns: kidRun,
    zstd_cpu_ms_per_poll: polls ? f3(kidRun / 1e6 / polls) : null,
    zstd_rss_kb_total: kidRss,
    setup_s: f3(setupS),
    fds: fdCount(pid),
    rss_kb: status(pid, 'VmRSS'),
    rss_hwm_kb: status(pid, 'VmHWM'),
    cpu_whole_run_so_far_ns: b.self.user + b.self.sys,
  })
}

main().catch((e) => {
  process.stderr.write(`mlab_contender: ${e?.stack ?? e}\n`)
  process.exit(1)
})
