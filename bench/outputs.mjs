#!/usr/bin/env node
// Cost of the collector's outputs (issue 10): collector CPU per poll at N sockets, alone vs.
// with 100 event-socket clients connected (reading) and a /metrics scrape every second.
// Target: at most +5%. Results: docs/BENCHMARKS.md, "Collector outputs".
//
//   node bench/outputs.mjs [--sockets 10000] [--seconds 30] [--rounds 5] [--clients 100] [--change 0.01] [--sequential]
//
// Built for a shared, loaded machine: each round runs the two contenders *at the same time*
// on the same socket farm (so both see the same load, the same sockets and the same changes),
// the one started first alternating from round to round, and compares CPU time, not wall
// time: utime + stime of each collector process (all threads) from /proc/PID/stat over the
// round's window, divided by the polls it completed in that window (`tcpinfo_polls_total`).
// The result is the per-round ratio (with outputs / alone): its median and its spread (min,
// max) over the rounds. `--sequential` runs the contenders one after the other instead
// (alternating order), as the first version of this script did.
//
// Needs root (a network namespace), the built package (dist/, native addon) and the farm
// (`cargo build --release -p tcpinfo-bench --bin farm`).
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CLI = join(ROOT, 'dist', 'cli', 'main.js')
const FARM = join(ROOT, 'target', 'release', 'farm')
const arg = (name, def) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
const SOCKETS = arg('--sockets', 10_000)
const SECONDS = arg('--seconds', 30)
const ROUNDS = arg('--rounds', 5)
const SEQUENTIAL = process.argv.includes('--sequential')
const CLIENTS = arg('--clients', 100)
const CHANGE = arg('--change', 0.01)
const TICKS = 100 // USER_HZ
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
/** `node -e READERS <socket> <n>`: n clients reading and discarding; prints the bytes received every second. */
const READERS = `
  const net = require('net'); let bytes = 0
  for (let i = 0; i < Number(process.argv[2]); i++) { const c = net.connect(process.argv[1]); c.on('data', (d) => (bytes += d.length)); c.on('error', () => {}) }
  setInterval(() => console.log(bytes), 1000)`

function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return Number(f[11]) + Number(f[12]) // utime + stime (fields 14, 15), all threads
}
async function scrape(addr) {
  const r = await fetch(`http://${addr}/metrics`)
  return r.text()
}
function value(text, name) {
  const l = text.split('\n').find((x) => x.startsWith(`${name} `))
  return l ? Number(l.split(' ')[1]) : NaN
}

/** Starts a collector on the farm's namespace; resolves once it serves /metrics and its readers have their initial state. */
async function startCollector(ns, withOutputs) {
  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-bench-outputs-'))
  const sock = join(out, 'events.sock')
  // Enough open files for every connection: the archive's file churn is not what is measured here.
  const args = [CLI, 'collect', '--netns', `/var/run/netns/${ns}`, '--output', join(out, 'data'), '--exclude-local=false', '--prom', '127.0.0.1:0', '--interval', '10', '--max-open-files', String(SOCKETS + 1000)]
  if (withOutputs) args.push('--eventsocket', sock)
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', (d) => (err += d))
  while (!/serving \/metrics and \/healthz on (\S+)/.test(err)) {
    if (child.exitCode !== null) throw new Error(err)
    await sleep(50)
  }
  const addr = /serving \/metrics and \/healthz on (\S+)/.exec(err)[1]
  const c = { withOutputs, child, addr, out, readers: undefined, received: '0' }
  // The clients: a process of their own, reading and discarding (each first gets the open connections).
  if (withOutputs) {
    c.readers = spawn(process.execPath, ['-e', READERS, sock, String(CLIENTS)], { stdio: ['ignore', 'pipe', 'inherit'] })
    c.readers.stdout.on('data', (d) => (c.received = String(d).trim().split('\n').at(-1)))
  }
  return c
}

/** Opens a measurement window on a running collector (CPU ticks and counters now). */
async function openWindow(c) {
  const m0 = await scrape(c.addr)
  c.w = { m0, c0: cpuTicks(c.child.pid), t0: Date.now(), scrapes: 0 }
  if (c.withOutputs) c.timer = setInterval(() => void scrape(c.addr).then(() => c.w.scrapes++), 1000)
}

/** Closes the window: CPU per poll and the counters over it. */
async function closeWindow(c) {
  clearInterval(c.timer)
  const c1 = cpuTicks(c.child.pid)
  const m1 = await scrape(c.addr)
  const { m0, c0, t0 } = c.w
  const seconds = (Date.now() - t0) / 1000
  const polls = value(m1, 'tcpinfo_polls_total') - value(m0, 'tcpinfo_polls_total')
  const cpuS = (c1 - c0) / TICKS
  return {
    outputs: c.withOutputs,
    seconds,
    polls,
    skipped: value(m1, 'tcpinfo_polls_skipped_total') - value(m0, 'tcpinfo_polls_skipped_total'),
    records: value(m1, 'tcpinfo_snapshot_total') - value(m0, 'tcpinfo_snapshot_total'),
    cpuS,
    cpuMsPerPoll: (cpuS * 1000) / polls,
    cpuPercent: (cpuS / seconds) * 100,
    sockets: value(m1, 'tcpinfo_tracked_connections'),
    clients: c.withOutputs ? value(m1, 'tcpinfo_eventsocket_clients') : 0,
    clientsDropped: c.withOutputs ? value(m1, 'tcpinfo_eventsocket_clients_dropped_total') : 0,
    eventBytesReceived: Number(c.received),
    scrapes: c.w.scrapes,
  }
}

async function stopCollector(c) {
  c.readers?.kill()
  c.child.kill('SIGTERM')
  await new Promise((r) => c.child.once('exit', r))
  rmSync(c.out, { recursive: true, force: true })
}

/** One round: both contenders (in `order`), concurrently or one after the other. */
async function round(ns, order) {
  const measure = async (cs) => {
    await sleep(8000) // warm-up: the first poll's opens and files, JIT
    // Every client has its initial state (10k open events each): wait until the bytes they
    // receive stop growing, so the window measures the steady state, not that one-time cost.
    for (let last = -1, c = cs.find((x) => x.withOutputs); c && Number(c.received) !== last; ) {
      last = Number(c.received)
      await sleep(2000)
    }
    for (const c of cs) await openWindow(c)
    await sleep(SECONDS * 1000)
    const rs = []
    for (const c of cs) rs.push(await closeWindow(c))
    for (const c of cs) await stopCollector(c)
    return rs
  }
  if (SEQUENTIAL) {
    const rs = []
    for (const withOutputs of order) rs.push(...(await measure([await startCollector(ns, withOutputs)])))
    return rs
  }
  const cs = []
  for (const withOutputs of order) cs.push(await startCollector(ns, withOutputs))
  return measure(cs)
}

const ns = `outbench${process.pid % 10000}`
spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
spawnSync('ip', ['netns', 'add', ns])
spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
const farm = spawn('ip', ['netns', 'exec', ns, FARM, '--connections', String(SOCKETS / 2), '--change-fraction', String(CHANGE), '--interval-ms', '10', '--duration-s', String((SECONDS + 20) * ROUNDS * 2 + 120)], { stdio: ['ignore', 'pipe', 'inherit'] })
let farmOut = ''
farm.stdout.on('data', (d) => (farmOut += d))
try {
  while (!/^ready \d+/m.test(farmOut)) {
    if (farm.exitCode !== null) throw new Error(`farm exited: ${farmOut}`)
    await sleep(100)
  }
  const results = []
  const rounds = []
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [false, true] : [true, false]
    const rs = await round(ns, order)
    for (const res of rs) console.error(JSON.stringify({ round: r, ...res }))
    results.push(...rs)
    const alone = rs.find((x) => !x.outputs)
    const withOut = rs.find((x) => x.outputs)
    rounds.push({ round: r, first: order[0] ? 'with outputs' : 'alone', aloneCpuMsPerPoll: alone.cpuMsPerPoll, withOutputsCpuMsPerPoll: withOut.cpuMsPerPoll, ratio: withOut.cpuMsPerPoll / alone.cpuMsPerPoll })
    console.error(JSON.stringify(rounds.at(-1)))
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
  }
  const ratios = rounds.map((x) => x.ratio)
  const summary = {
    sockets: SOCKETS,
    change: CHANGE,
    clients: CLIENTS,
    seconds: SECONDS,
    rounds: ROUNDS,
    mode: SEQUENTIAL ? 'sequential, alternating order' : 'paired (concurrent), alternating start order',
    aloneCpuMsPerPoll: median(results.filter((x) => !x.outputs).map((x) => x.cpuMsPerPoll)),
    withOutputsCpuMsPerPoll: median(results.filter((x) => x.outputs).map((x) => x.cpuMsPerPoll)),
    medianIncreasePercent: (median(ratios) - 1) * 100,
    spreadPercent: [(Math.min(...ratios) - 1) * 100, (Math.max(...ratios) - 1) * 100],
    target: '<= 5%',
    loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
  }
  console.log(JSON.stringify({ summary, rounds, results }))
} finally {
  farm.kill('SIGTERM')
  await new Promise((r) => farm.once('exit', r))
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
}
