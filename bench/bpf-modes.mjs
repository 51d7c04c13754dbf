#!/usr/bin/env node
// The BPF poll mode against netlink (issue 16): the socket farm (bench/src/bin/farm.rs) at N
// sockets with a fraction p changing per poll, then on the same sockets: the bare drain
// (`drain --families unspec`, the physical limit), tcpinfo's netlink poll, its BPF poll, and
// the BPF walk alone (`--state-only 1`: no fingerprint). Prints one markdown table of CPU per
// poll (user + sys of the poller process) and the per-socket costs. Results: docs/BENCHMARKS.md,
// "BPF poll mode (issue 16)". Needs root and `cargo build --release -p tcpinfo-bench`.
//
//   node bench/bpf-modes.mjs [--sizes 10000,100000] [--changes 0,0.01,0.1] [--interval-ms 50]
//                            [--polls 40] [--farm-interval-ms MS] [--sustained 10000]
//
// `--sustained N` adds a run at N sockets, p = 1%, farm and poller at 10 ms: the BPF poller's
// CPU as a share of one core over the run (issue target: <= 0.25 at 10k).
import { spawn, spawnSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'target', 'release')
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []))
const sizes = (args.sizes ?? '10000,100000').split(',').map(Number)
const changes = (args.changes ?? '0,0.01,0.1').split(',').map(Number)
const intervalMs = Number(args['interval-ms'] ?? 50)
// The farm changes p of its connections per farm interval: set it to the poll period
// (interval + the poll's own wall time) so that p is the share changed per poll.
const farmMs = Number(args['farm-interval-ms'] ?? intervalMs)
const polls = Number(args.polls ?? 40)
const sustained = args.sustained ? Number(args.sustained) : 0
const log = (m) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`)
const live = new Set()
const namespaces = new Set()
const sh = (cmd, a) => spawnSync(cmd, a, { stdio: 'ignore' })
function cleanup() {
  for (const c of live) c.kill('SIGKILL')
  for (const ns of namespaces) sh('ip', ['netns', 'del', ns])
}
process.on('SIGINT', () => { cleanup(); process.exit(130) })
process.on('SIGTERM', () => { cleanup(); process.exit(143) })

const inNs = (ns, argv) => ['ip', 'netns', 'exec', ns, ...argv.map(String)]

function run(ns, argv, env = {}) {
  return new Promise((res, rej) => {
    const [cmd, ...a] = inNs(ns, argv)
    const c = spawn(cmd, a, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    live.add(c)
    let out = ''
    let err = ''
    c.stdout.on('data', (d) => (out += d))
    c.stderr.on('data', (d) => (err += d))
    c.on('exit', (code) => {
      live.delete(c)
      const last = out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1)
      if (code !== 0 || !last) rej(new Error(`${argv.join(' ')}: ${code} ${err.trim().split('\n').slice(-2).join(' | ')}`))
      else res(JSON.parse(last))
    })
  })
}

function startFarm(ns, n, p, farmMs) {
  return new Promise((res, rej) => {
    const [cmd, ...a] = inNs(ns, [join(BIN, 'farm'), '--connections', Math.round(n / 2), '--change-fraction', p, '--interval-ms', farmMs, '--duration-s', 3600, '--setup-timeout-s', 600])
    const c = spawn(cmd, a, { stdio: ['ignore', 'pipe', 'inherit'] })
    live.add(c)
    let buf = ''
    c.stdout.on('data', (d) => {
      buf += d
      if (/^ready \d+/m.test(buf)) res(c)
    })
    c.on('exit', (code) => rej(new Error(`farm exited ${code}`)))
  })
}

const cpuMs = (r) => (r.user_ns_total + r.sys_ns_total) / 1e6
const perPoll = (r) => cpuMs(r) / r.polls

async function measure(n, p, farmMs, pollMs, tools) {
  const ns = `bpfwt-bench-${process.pid}-${n}-${String(p).replace('.', '_')}`
  sh('ip', ['netns', 'add', ns])
  namespaces.add(ns)
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  const farm = await startFarm(ns, n, p, farmMs)
  const out = {}
  try {
    for (const [name, argv, env] of tools) {
      log(`N=${n} p=${p}: ${name}`)
      out[name] = await run(ns, argv, env)
    }
  } finally {
    farm.kill('SIGTERM')
    live.delete(farm)
    await new Promise((r) => setTimeout(r, 500))
    sh('ip', ['netns', 'del', ns])
    namespaces.delete(ns)
  }
  return out
}

const poll = (mode, extra = []) => [join(BIN, 'poll'), '--mode', mode, '--polls', polls, '--warmup', 3, '--interval-ms', intervalMs, ...extra]
// `bpf`: the event mode (tracepoints mark dirty sockets, only those are fetched);
// `bpfwalk`: the walk-every-poll mode (TCPINFO_BPF_EVENTS=0); `walk`: the walk alone
// (state-only fingerprint, walk mode).
const WALK_ENV = { TCPINFO_BPF_EVENTS: '0' }
const TOOLS = [
  ['drain', [join(BIN, 'drain'), '--families', 'unspec', '--polls', polls, '--interval-ms', intervalMs]],
  ['netlink', poll('netlink')],
  ['bpf', poll('bpf')],
  ['bpfwalk', poll('bpf'), WALK_ENV],
  ['walk', poll('bpf', ['--state-only', 1]), WALK_ENV],
]

const rows = []
const costs = []
for (const n of sizes) {
  const base = {}
  for (const p of changes) {
    const r = await measure(n, p, farmMs, intervalMs, p === 0 ? TOOLS : TOOLS.filter(([t]) => t !== 'walk'))
    const drain = perPoll(r.drain)
    const fetched = r.bpf.bpf_fetched_total / r.bpf.polls
    const dirty = r.bpf.bpf_dirty_total / r.bpf.polls
    const extra = (r.bpf.bpf_echo_total + r.bpf.bpf_sticky_total) / r.bpf.polls
    const walked = r.bpfwalk.sockets_per_poll
    rows.push(`| ${n} | ${p * 100}% | ${walked.toFixed(0)} | ${dirty.toFixed(0)} + ${extra.toFixed(0)} | ${fetched.toFixed(0)} (${((fetched / walked) * 100).toFixed(2)}%) | ${r.bpf.bpf_event_polls}/${r.bpf.polls} | ${drain.toFixed(2)} | ${perPoll(r.netlink).toFixed(2)} | ${perPoll(r.bpfwalk).toFixed(2)} | ${perPoll(r.bpf).toFixed(2)} | **${(perPoll(r.bpf) / drain).toFixed(3)}** | ${(perPoll(r.bpfwalk) / drain).toFixed(3)} | ${(perPoll(r.netlink) / drain).toFixed(3)} |`)
    if (p === 0) {
      base.bpf = perPoll(r.bpf)
      base.walk = perPoll(r.walk)
      costs.push(`| ${n} | event poll with nothing changed (drain of the dirty set, sticky fetches) | ${(perPoll(r.bpf) * 1e3).toFixed(0)} µs/poll |`)
      costs.push(`| ${n} | walk (state only) | ${((perPoll(r.walk) * 1e6) / walked).toFixed(0)} ns/socket |`)
      costs.push(`| ${n} | fingerprint (bpfwalk − walk, p = 0) | ${(((perPoll(r.bpfwalk) - perPoll(r.walk)) * 1e6) / walked).toFixed(0)} ns/socket |`)
      costs.push(`| ${n} | resync (two fingerprint walks every 20 s), amortized | ${((2 * perPoll(r.bpfwalk)) / (20000 / (intervalMs + perPoll(r.bpf)))).toFixed(2)} ms/poll at this interval |`)
      costs.push(`| ${n} | bare drain | ${((drain * 1e6) / r.drain.sockets_per_poll).toFixed(0)} ns/socket |`)
    } else if (base.bpf !== undefined && fetched > 0) {
      costs.push(`| ${n} | exact fetch + diff/encode per fetched socket, event mode (p = ${p * 100}%) | ${(((perPoll(r.bpf) - base.bpf) * 1e6) / fetched).toFixed(0)} ns |`)
    }
    process.stderr.write(rows.at(-1) + '\n')
  }
}
let sustainedRow = ''
if (sustained) {
  const r = await measure(sustained, 0.01, 10, 10, [['bpf', [join(BIN, 'poll'), '--mode', 'bpf', '--polls', 500, '--warmup', 3, '--interval-ms', 10]]])
  const share = (cpuMs(r.bpf) / 1e3) / r.bpf.elapsed_s
  sustainedRow = `\nSustained: ${sustained} sockets, p = 1% per 10 ms, BPF mode polling every 10 ms for ${r.bpf.elapsed_s.toFixed(1)} s: ${(share * 100).toFixed(1)}% of one core (wall p50 ${(r.bpf.wall_us_p50 / 1e3).toFixed(2)} ms, p99 ${(r.bpf.wall_us_p99 / 1e3).toFixed(2)} ms).\n`
}
const kernel = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()
console.log(`Kernel ${kernel}, poll interval ${intervalMs} ms, farm interval ${farmMs} ms, ${polls} polls per tool. CPU = user + sys of the poller process per poll.

| N | p (farm) | sockets | dirty + echo/sticky per poll | fetched/poll | event polls | drain ms | netlink ms | bpf walk ms | bpf events ms | events ÷ drain | walk ÷ drain | netlink ÷ drain |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

| N | cost | value |
|---|---|---|
${costs.join('\n')}
${sustainedRow}`)
