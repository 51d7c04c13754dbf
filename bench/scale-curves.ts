#!/usr/bin/env node
// RSS over time and the CPU budget's effective interval against socket count (issue 13).
//
//   node --import=tsx bench/scale-curves.ts [--sizes 1000,10000,100000,500000] [--seconds 30]
//                                           [--max-cpu 0.2] [--svg docs/scale-curves.svg]
//
// For each size N (sockets: N/2 farm connections on loopback, 1% of them changing every
// 200 ms) in a fresh network namespace, runs one after the other, each for --seconds:
//   - watch({ intervalMs: 10, maxCpu }) consuming and releasing every batch (what a Node
//     program embedding tcpinfo does), and
//   - `tcpinfo collect --max-cpu M --exclude-local=false` archiving every connection to a
//     tmpfs directory (the daemon).
// The parent samples each child's RSS (/proc/PID/status VmRSS) every 200 ms; watch() reports
// each poll's effective interval and poller CPU (`batch.stats`), the collector logs its
// effective interval when it changes (`--log-format json`). Prints a markdown table, writes
// bench/results/scale-curves-<time>.json and an SVG of the RSS curves. Needs root, the bench
// binaries (cargo build --release -p tcpinfo-bench) and dist/ (npm run build).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { renderChart, type Series } from '../__test__/helpers/svg-chart.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'target', 'release')
const SAMPLE_MS = 200
const log = (m: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`)

const args = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '')
const sizes = (args.get('sizes') ?? '1000,10000,100000,500000').split(',').map(Number)
const seconds = Number(args.get('seconds') ?? 30)
const maxCpu = Number(args.get('max-cpu') ?? 0.2)
const svgPath = resolve(ROOT, args.get('svg') ?? 'docs/scale-curves.svg')

const ns = `tcpinfo-scale-${process.pid}`
const live = new Set<ChildProcess>()
function cleanup(): void {
  for (const c of live) c.kill('SIGKILL')
  spawnSync('ip', ['netns', 'del', ns])
}
process.on('SIGINT', () => { cleanup(); process.exit(130) })

function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : null
  } catch {
    return null
  }
}

/** Spawns argv in the namespace (`ip netns exec` execs it: same pid), with stdout lines to `onLine`. */
function run(argv: string[], onLine: (l: string) => void, stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: [stdin, 'pipe', 'pipe'] })
  live.add(child)
  child.on('exit', () => live.delete(child))
  createInterface({ input: child.stdout! }).on('line', onLine)
  createInterface({ input: child.stderr! }).on('line', onLine)
  return child
}

/** Samples the child's RSS until it exits. */
async function sampleUntilExit(child: ChildProcess): Promise<number[]> {
  const rss: number[] = []
  const timer = setInterval(() => {
    const v = child.pid ? rssMb(child.pid) : null
    if (v !== null) rss.push(v)
  }, SAMPLE_MS)
  await new Promise((r) => child.once('exit', r))
  clearInterval(timer)
  return rss
}

const WATCH_CHILD = `
const { watch } = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))})
const ac = new AbortController()
setTimeout(() => ac.abort(), ${seconds * 1000})
const t0 = Date.now()
try {
  for await (const b of watch({ intervalMs: 10, maxCpu: ${maxCpu}, signal: ac.signal })) {
    if (!b.more) console.log(JSON.stringify({ t: (Date.now() - t0) / 1000, effMs: b.stats.effectiveIntervalNanos / 1e6, cpuMs: b.stats.cpuNanos / 1e6, sockets: b.stats.socketsSeen }))
    b.release()
  }
} catch (e) { if (!ac.signal.aborted) throw e }
`

interface Run { rss: number[]; effMs: number[]; cpuMs: number[]; polls: number }

async function watchRun(): Promise<Run> {
  const effMs: number[] = []
  const cpuMs: number[] = []
  const child = run([process.execPath, '--input-type=module', '-e', WATCH_CHILD], (l) => {
    if (!l.startsWith('{')) return log(`  watch(): ${l}`)
    const p = JSON.parse(l) as { effMs: number; cpuMs: number }
    effMs.push(p.effMs)
    cpuMs.push(p.cpuMs)
  })
  const rss = await sampleUntilExit(child)
  return { rss, effMs, cpuMs, polls: effMs.length }
}

async function collectorRun(out: string): Promise<Run> {
  const effMs: number[] = []
  let polls = 0
  const argv = [process.execPath, join(ROOT, 'dist', 'cli', 'main.js'), 'collect', `--output=${out}`, `--max-cpu=${maxCpu}`, '--exclude-local=false', '--log-format=json', '--log-level=info']
  const child = run(argv, (l) => {
    if (!l.startsWith('{')) return
    const e = JSON.parse(l) as { effectiveIntervalMs?: number; polls?: number; msg?: string }
    if (e.effectiveIntervalMs !== undefined) effMs.push(e.effectiveIntervalMs)
    if (e.polls !== undefined) polls = e.polls
  })
  setTimeout(() => child.kill('SIGTERM'), seconds * 1000)
  const rss = await sampleUntilExit(child)
  return { rss, effMs, cpuMs: [], polls }
}

async function startFarm(connections: number): Promise<ChildProcess> {
  spawnSync('ip', ['netns', 'del', ns])
  if (spawnSync('ip', ['netns', 'add', ns]).status !== 0) throw new Error(`ip netns add ${ns} failed`)
  spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  let ready: () => void
  const isReady = new Promise<void>((r) => { ready = r })
  const farm = run([join(BIN, 'farm'), '--connections', String(connections), '--change-fraction', '0.01', '--interval-ms', '200', '--duration-s', '3600', '--setup-timeout-s', '600'], (l) => {
    if (/^ready \d+/.test(l)) ready()
  })
  farm.once('exit', (code) => { if (code) log(`farm exited ${code}`) })
  await isReady
  return farm
}

const peak = (v: number[]): number => Math.max(0, ...v)
const median = (v: number[]): number => { const s = [...v].sort((a, b) => a - b); return s.length ? s[s.length >> 1]! : 0 }
const results: Record<string, unknown>[] = []
const curves: Series[] = []
let samples = 0
try {
  for (const n of sizes) {
    log(`N=${n}: starting the farm (${n / 2} connections)`)
    const farm = await startFarm(Math.round(n / 2))
    log(`N=${n}: watch({ maxCpu: ${maxCpu} }) for ${seconds} s`)
    const w = await watchRun()
    const out = join('/dev/shm', `tcpinfo-scale-${process.pid}`)
    log(`N=${n}: tcpinfo collect --max-cpu ${maxCpu} for ${seconds} s`)
    const c = await collectorRun(out)
    rmSync(out, { recursive: true, force: true })
    farm.kill('SIGTERM')
    await new Promise((r) => farm.once('exit', r))
    // The steady interval: polls after the first (which opens every socket) have settled.
    const steady = w.effMs.slice(Math.min(2, w.effMs.length - 1))
    const r = {
      sockets: n,
      watch: { rss_peak_mb: peak(w.rss), rss_end_mb: w.rss.at(-1) ?? 0, polls: w.polls, effective_interval_ms: median(steady), poll_cpu_ms: median(w.cpuMs.slice(1)), cpu_fraction: median(w.cpuMs.slice(1)) / Math.max(1e-9, median(steady)) },
      collector: { rss_peak_mb: peak(c.rss), rss_end_mb: c.rss.at(-1) ?? 0, polls: c.polls, effective_interval_ms: c.effMs.at(-1) ?? 0 },
      rss_watch: w.rss,
      rss_collector: c.rss,
    }
    results.push(r)
    log(`  ${JSON.stringify({ ...r, rss_watch: undefined, rss_collector: undefined })}`)
    if (n >= 100_000) {
      curves.push({ title: `watch(), ${n / 1000}k sockets: RSS MB`, values: w.rss }, { title: `tcpinfo collect, ${n / 1000}k sockets: RSS MB`, values: c.rss })
      samples = Math.max(samples, w.rss.length, c.rss.length)
    }
  }
} finally {
  cleanup()
}

const when = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true })
writeFileSync(join(ROOT, 'bench', 'results', `scale-curves-${when}.json`), JSON.stringify({ seconds, maxCpu, results }, null, 1))
if (curves.length) {
  const times = Array.from({ length: samples }, (_, i) => (i * SAMPLE_MS) / 1000)
  writeFileSync(svgPath, renderChart(`RSS over ${seconds} s of polling, CPU budget ${maxCpu} of a core`, `bench/scale-curves.ts, ${when}; a sample every ${SAMPLE_MS} ms; 1% of connections change every 200 ms`, times, curves))
}
console.log('| sockets | watch() RSS peak / end MB | collector RSS peak / end MB | watch() effective interval ms | poller CPU per poll ms | CPU share of a core | collector effective interval ms (last logged) |')
console.log('|--:|--:|--:|--:|--:|--:|--:|')
for (const r of results as { sockets: number; watch: Record<string, number>; collector: Record<string, number> }[]) {
  const w = r.watch
  const c = r.collector
  console.log(`| ${r.sockets.toLocaleString('en')} | ${w.rss_peak_mb!.toFixed(1)} / ${w.rss_end_mb!.toFixed(1)} | ${c.rss_peak_mb!.toFixed(1)} / ${c.rss_end_mb!.toFixed(1)} | ${w.effective_interval_ms!.toFixed(1)} | ${w.poll_cpu_ms!.toFixed(1)} | ${w.cpu_fraction!.toFixed(3)} | ${c.effective_interval_ms ? c.effective_interval_ms.toFixed(1) : '–'} |`)
}
