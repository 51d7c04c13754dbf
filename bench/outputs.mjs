#!/usr/bin/env node
// Cost of the collector's outputs (issue 10): collector CPU per poll at N sockets, alone vs.
// with 100 event-socket clients connected (reading) and a /metrics scrape every second.
// Target: at most +5%. Results: docs/BENCHMARKS.md, "Collector outputs".
//
//   node bench/outputs.mjs [--sockets 10000] [--seconds 20] [--rounds 2] [--clients 100] [--change 0.01]
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
const SECONDS = arg('--seconds', 20)
const ROUNDS = arg('--rounds', 2)
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

async function runCollector(ns, withOutputs) {
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
  await sleep(4000) // warm-up: the first poll's opens and files, JIT
  // The clients: a process of their own, reading and discarding (each first gets the open connections).
  let readers
  let received = '0'
  if (withOutputs) {
    readers = spawn(process.execPath, ['-e', READERS, sock, String(CLIENTS)], { stdio: ['ignore', 'pipe', 'inherit'] })
    readers.stdout.on('data', (d) => (received = String(d).trim().split('\n').at(-1)))
    await sleep(4000) // every client has its initial state
  }
  const m0 = await scrape(addr)
  const c0 = cpuTicks(child.pid)
  const t0 = Date.now()
  let scrapes = 0
  const timer = withOutputs ? setInterval(() => void scrape(addr).then(() => scrapes++), 1000) : undefined
  await sleep(SECONDS * 1000)
  clearInterval(timer)
  const c1 = cpuTicks(child.pid)
  const m1 = await scrape(addr)
  const polls = value(m1, 'tcpinfo_polls_total') - value(m0, 'tcpinfo_polls_total')
  const result = {
    outputs: withOutputs,
    seconds: (Date.now() - t0) / 1000,
    polls,
    skipped: value(m1, 'tcpinfo_polls_skipped_total') - value(m0, 'tcpinfo_polls_skipped_total'),
    cpuMsPerPoll: (((c1 - c0) * 1000) / TICKS) / polls,
    cpuPercent: (((c1 - c0) / TICKS) / ((Date.now() - t0) / 1000)) * 100,
    sockets: value(m1, 'tcpinfo_tracked_connections'),
    clients: withOutputs ? value(m1, 'tcpinfo_eventsocket_clients') : 0,
    clientsDropped: withOutputs ? value(m1, 'tcpinfo_eventsocket_clients_dropped_total') : 0,
    eventBytesReceived: Number(received),
    scrapes,
  }
  readers?.kill()
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
  rmSync(out, { recursive: true, force: true })
  return result
}

const ns = `outbench${process.pid % 10000}`
spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
spawnSync('ip', ['netns', 'add', ns])
spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
const farm = spawn('ip', ['netns', 'exec', ns, FARM, '--connections', String(SOCKETS / 2), '--change-fraction', String(CHANGE), '--interval-ms', '10', '--duration-s', String((SECONDS + 10) * ROUNDS * 2 + 120)], { stdio: ['ignore', 'pipe', 'inherit'] })
let farmOut = ''
farm.stdout.on('data', (d) => (farmOut += d))
try {
  while (!/^ready \d+/m.test(farmOut)) {
    if (farm.exitCode !== null) throw new Error(`farm exited: ${farmOut}`)
    await sleep(100)
  }
  const results = []
  for (let r = 0; r < ROUNDS; r++) {
    for (const withOutputs of r % 2 === 0 ? [false, true] : [true, false]) {
      const res = await runCollector(ns, withOutputs)
      results.push(res)
      console.error(JSON.stringify(res))
    }
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]
  const alone = median(results.filter((x) => !x.outputs).map((x) => x.cpuMsPerPoll))
  const withOut = median(results.filter((x) => x.outputs).map((x) => x.cpuMsPerPoll))
  const summary = { sockets: SOCKETS, change: CHANGE, clients: CLIENTS, seconds: SECONDS, rounds: ROUNDS, aloneCpuMsPerPoll: alone, withOutputsCpuMsPerPoll: withOut, increasePercent: ((withOut - alone) / alone) * 100, target: '<= 5%' }
  console.log(JSON.stringify({ summary, results }))
} finally {
  farm.kill('SIGTERM')
  await new Promise((r) => farm.once('exit', r))
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
}
