#!/usr/bin/env node
// The outputs' own cost per poll, measured inside one process (issue 10): watch() on a farm of
// N sockets, each batch offered to the event socket (with 100 reading clients in another
// process) and to the metrics sink, and /metrics rendered once per second. Reports the JS
// time of those calls per poll next to the process CPU per poll (poller thread + JS), so the
// outputs' share does not drown in the machine's noise as a difference of two runs would.
//
//   node bench/outputs-inproc.mjs [--sockets 10000] [--seconds 20] [--clients 100] [--change 0.01]
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { watch, EventSocketServer, MetricsSink } = await import(join(ROOT, 'dist', 'index.js'))
const FARM = join(ROOT, 'target', 'release', 'farm')
const arg = (name, def) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
const SOCKETS = arg('--sockets', 10_000)
const SECONDS = arg('--seconds', 20)
const CLIENTS = arg('--clients', 100)
const CHANGE = arg('--change', 0.01)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const READERS = `
  const net = require('net'); let bytes = 0
  for (let i = 0; i < Number(process.argv[2]); i++) { const c = net.connect(process.argv[1]); c.on('data', (d) => (bytes += d.length)); c.on('error', () => {}) }
  setInterval(() => console.log(bytes), 1000)`

const ns = `outinproc${process.pid % 10000}`
spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
spawnSync('ip', ['netns', 'add', ns])
spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
const farm = spawn('ip', ['netns', 'exec', ns, FARM, '--connections', String(SOCKETS / 2), '--change-fraction', String(CHANGE), '--interval-ms', '10', '--duration-s', String(SECONDS + 60)], { stdio: ['ignore', 'pipe', 'inherit'] })
let farmOut = ''
farm.stdout.on('data', (d) => (farmOut += d))
const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-bench-inproc-'))
const es = new EventSocketServer({ path: join(dir, 'events.sock') })
const metrics = new MetricsSink({ intervalMs: 10 })
const ac = new AbortController()
try {
  while (!/^ready \d+/m.test(farmOut)) {
    if (farm.exitCode !== null) throw new Error(`farm exited: ${farmOut}`)
    await sleep(100)
  }
  await es.listen()
  let phase = 'warmup'
  const acc = { polls: 0, records: 0, esMs: 0, metricsMs: 0, scrapeMs: 0, scrapes: 0, cpu0: undefined, t0: 0 }
  let readers
  const kept = []
  const run = (async () => {
    for await (const batch of watch({ netns: `/var/run/netns/${ns}`, intervalMs: 10, excludeLocal: false, uuidPrefix: 'bench_1', signal: ac.signal })) {
      const a = performance.now()
      es.offer(batch)
      const b = performance.now()
      metrics.offer(batch)
      const c = performance.now()
      if (phase === 'measure') {
        kept.push(batch)
        if (kept.length > 50) kept.shift()
        acc.polls++
        acc.records += batch.size
        acc.esMs += b - a
        acc.metricsMs += c - b
      }
    }
  })().catch((e) => (e.name === 'AbortError' ? undefined : Promise.reject(e)))
  await sleep(3000)
  readers = spawn(process.execPath, ['-e', READERS, es.path, String(CLIENTS)], { stdio: ['ignore', 'pipe', 'inherit'] })
  await sleep(4000) // every client has its initial state (the open connections)
  phase = 'measure'
  acc.cpu0 = process.cpuUsage()
  acc.t0 = performance.now()
  const scraper = setInterval(() => {
    const s = performance.now()
    void metrics.registry.metrics().then(() => {
      acc.scrapeMs += performance.now() - s
      acc.scrapes++
    })
  }, 1000)
  await sleep(SECONDS * 1000)
  clearInterval(scraper)
  phase = 'done'
  const cpu = process.cpuUsage(acc.cpu0)
  const wall = performance.now() - acc.t0
  const cpuMsPerPoll = (cpu.user + cpu.system) / 1000 / acc.polls
  const outputsMsPerPoll = (acc.esMs + acc.metricsMs + acc.scrapeMs) / acc.polls
  // CPU of the same calls replayed on the last 50 real batches, single-threaded (watch is paused:
  // its poller thread sleeps while the consumer does not pull), so the numbers are CPU, not wall.
  ac.abort()
  await run
  const cpuOf = async (reps, fn) => {
    const c0 = process.cpuUsage()
    for (let r = 0; r < reps; r++) await fn()
    const c = process.cpuUsage(c0)
    return (c.user + c.system) / 1000 / reps
  }
  const esCpu = (await cpuOf(5, () => { for (const b of kept) es.offer(b) })) / kept.length
  const mCpu = (await cpuOf(5, () => { for (const b of kept) metrics.offer(b) })) / kept.length
  const scrapeCpu = await cpuOf(20, () => metrics.registry.metrics())
  const st = es.stats()
  console.log(JSON.stringify({
    sockets: SOCKETS, change: CHANGE, clients: st.clients, clientsDropped: st.clientsDropped, seconds: wall / 1000, polls: acc.polls,
    recordsPerPoll: acc.records / acc.polls, processCpuMsPerPoll: cpuMsPerPoll,
    eventsocketMsPerPoll: acc.esMs / acc.polls, metricsOfferMsPerPoll: acc.metricsMs / acc.polls, scrapeMsEach: acc.scrapeMs / acc.scrapes, scrapes: acc.scrapes,
    outputsMsPerPoll, outputsShareOfProcessCpu: `${((outputsMsPerPoll / cpuMsPerPoll) * 100).toFixed(2)}%`,
    cpu: { eventsocketMsPerPoll: esCpu, metricsOfferMsPerPoll: mCpu, scrapeMs: scrapeCpu, replayedBatches: kept.length, recordsPerReplayedBatch: kept.reduce((n, b) => n + b.size, 0) / kept.length },
  }))
  readers.kill()
} finally {
  ac.abort()
  await es.close()
  farm.kill('SIGTERM')
  await new Promise((r) => farm.once('exit', r))
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
  rmSync(dir, { recursive: true, force: true })
}
