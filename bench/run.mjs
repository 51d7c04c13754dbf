#!/usr/bin/env node
// The benchmark harness (issue #3): the socket farm at each size N and change fraction p, the
// contenders one after the other on the same sockets, the churn check, and one markdown table
// with the ratios. No npm dependencies. See bench/README.md ("run.mjs") and docs/BENCHMARKS.md.
//
//   node bench/run.mjs --quick        # `npm run bench`: N 1k,10k; p 0,1%; churn 100/s; < 3 min
//   node bench/run.mjs                # the full sweep: N 1k,10k,100k; p 0,1%,10%,100%; churn 100,1000
//
// Needs: root (network namespaces, `ip`, `tc`), `ss`, the bench binaries (this script runs
// `cargo build --release -p tcpinfo-bench` unless --no-build) and, for the Node contender, the
// built package (`npm install` or `npm run build`: dist/ and the native addon).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'target', 'release')
const RESULTS = join(ROOT, 'bench', 'results')

const HELP = `usage: node bench/run.mjs [--quick] [options]

  --quick              N 1k,10k sockets; p 0,0.01; churn 100/s for 5 s; fewer polls (npm run bench)
  --sizes LIST         sockets in the dump (the farm holds N/2 connections, both ends)
                       [full: 1000,10000,100000]
  --changes LIST       change fraction p per 10 ms interval [full: 0,0.01,0.1,1]
  --report-all LIST    sizes at which to add the uncontended "every socket every poll" row:
                       an idle farm, and both tcpinfo contenders told that every tcp_info field
                       counts (the last_* elapsed times change every poll) [full: 10000]
  --churn LIST         churn rates R (connections/s) for the churn check [full: 100,1000]; 0 = skip
  --churn-seconds S    length of each churn run [full: 20, quick: 5]
  --churn-connections C  connections held during the churn check [1000]
  --rounds R           contender rounds per (N, p), order rotated; medians reported [3]
  --polls K            measured polls per contender (default: by N, see below)
  --ss-polls K         runs of ss per round (default: by N)
  --interval-ms MS     poll interval of every contender and of the farm [10]
  --tools LIST         contenders to run [drain,drain2,rust,node,ss]; also collector (the real
                       collector archiving to a scratch dir) and mlab (needs --mlab-bin)
  --mlab-bin PATH      M-Lab's tcp-info binary for the mlab contender (built outside the repo)
  --mlab-window-s S    the mlab contender's measured window [5]
  --max-open-files N   the collector contender's open-file cap [the collector's default]
  --net-octet A        first octet of the farm's addresses [127; 10 if mlab runs: M-Lab always
                       skips loopback, so the harness adds 'ip route add local A.0.0.0/8 dev lo']
  --farm-interval MS|auto  the farm's change interval; auto (default) = the poll period at
                       that N (interval + the p=0 bare drain's wall p50), so p is the fraction
                       of sockets changed per poll
  --netem "ARGS"       run with 'tc qdisc add dev lo root netem ARGS' inside the namespace,
                       e.g. "delay 1ms loss 0.1% limit 100000"
  --no-netns           run in the current network namespace (default: a fresh one per farm run)
  --no-build           do not run 'cargo build --release -p tcpinfo-bench'
  --out DIR            where raw JSON and the table go [bench/results]
  --render FILE.json   print the table of an earlier run's raw results (no measurement)
  --help`

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    quick: false, sizes: null, changes: null, reportAll: null, churn: null, churnSeconds: null, churnConnections: 1000,
    rounds: null, polls: null, ssPolls: null, intervalMs: 10, render: null, tools: 'drain,drain2,rust,node,ss', netem: null,
    netns: true, build: true, out: RESULTS, farmInterval: 'auto', mlabBin: null, mlabWindowS: 5, netOctet: null, maxOpenFiles: null,
  }
  const names = {
    '--sizes': 'sizes', '--changes': 'changes', '--report-all': 'reportAll', '--churn': 'churn', '--churn-seconds': 'churnSeconds',
    '--churn-connections': 'churnConnections', '--rounds': 'rounds', '--polls': 'polls', '--ss-polls': 'ssPolls',
    '--interval-ms': 'intervalMs', '--tools': 'tools', '--netem': 'netem', '--out': 'out', '--farm-interval': 'farmInterval',
    '--render': 'render', '--mlab-bin': 'mlabBin', '--mlab-window-s': 'mlabWindowS', '--net-octet': 'netOctet', '--max-open-files': 'maxOpenFiles',
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--help' || a === '-h') {
      console.log(HELP)
      process.exit(0)
    } else if (a === '--quick') o.quick = true
    else if (a === '--no-netns') o.netns = false
    else if (a === '--no-build') o.build = false
    else {
      const [flag, inline] = a.split(/=(.*)/s)
      const key = names[flag]
      if (!key) fail(`unknown argument ${JSON.stringify(a)} (see --help)`)
      const v = inline ?? argv[++i]
      if (v === undefined) fail(`${flag} needs a value`)
      o[key] = v
    }
  }
  const list = (v) => String(v).split(',').map((x) => Number(x.trim()))
  const num = (v, name) => {
    const n = Number(v)
    if (!Number.isFinite(n) || n < 0) fail(`${name} must be a non-negative number`)
    return n
  }
  o.sizes = o.sizes ? list(o.sizes) : o.quick ? [1000, 10000] : [1000, 10000, 100000]
  o.changes = o.changes ? list(o.changes) : o.quick ? [0, 0.01] : [0, 0.01, 0.1, 1]
  o.reportAll = o.reportAll !== null ? list(o.reportAll).filter((n) => n > 0) : o.quick ? [] : [10000]
  o.churn = o.churn ? list(o.churn).filter((r) => r > 0) : o.quick ? [100] : [100, 1000]
  o.churnSeconds = num(o.churnSeconds ?? (o.quick ? 5 : 20), '--churn-seconds')
  o.churnConnections = num(o.churnConnections, '--churn-connections')
  o.rounds = num(o.rounds ?? 3, '--rounds')
  o.intervalMs = num(o.intervalMs, '--interval-ms')
  if (o.polls !== null) o.polls = num(o.polls, '--polls')
  if (o.ssPolls !== null) o.ssPolls = num(o.ssPolls, '--ss-polls')
  if (o.farmInterval !== 'auto') o.farmInterval = num(o.farmInterval, '--farm-interval')
  o.tools = o.tools.split(',').map((t) => t.trim())
  for (const t of o.tools) if (!CONTENDERS.some((c) => c.name === t)) fail(`unknown tool ${t}`)
  o.mlabWindowS = num(o.mlabWindowS, '--mlab-window-s')
  o.netOctet = o.netOctet === null ? (o.tools.includes('mlab') ? 10 : 127) : num(o.netOctet, '--net-octet')
  if (!Number.isInteger(o.netOctet) || o.netOctet < 1 || o.netOctet > 223) fail('--net-octet must be 1..223')
  if (o.netOctet !== 127 && !o.netns) fail('--net-octet other than 127 needs a namespace (drop --no-netns)')
  if (o.sizes.some((n) => !(n >= 2)) || o.changes.some((p) => !(p >= 0 && p <= 1))) fail('bad --sizes or --changes')
  return o
}

// Measured polls per contender run, by socket count: enough CPU time to beat the 4 ms tick.
function pollsFor(o, n) {
  if (o.polls !== null) return o.polls
  return clamp(Math.round((o.quick ? 5e5 : 2e6) / n), o.quick ? 20 : 30, o.quick ? 100 : 200)
}
// Unmeasured polls before them, for both tcpinfo contenders: the first poll reports every
// socket as opened, and through watch() the records pool and V8's scavenges need ~40 polls
// (10k sockets, p = 100%) to reach their steady state, after which nothing is faulted in.
function warmupFor(o, n) {
  return clamp(Math.round(pollsFor(o, n) / 4), 1, 50)
}
function ssPollsFor(o, n) {
  if (o.ssPolls !== null) return o.ssPolls
  return clamp(Math.round((o.quick ? 1e5 : 2e5) / n), 3, o.quick ? 20 : 50)
}

// ---------------------------------------------------------------------------------------------
// The contenders. Each prints one JSON line of the shared shape (bench/src/report.rs) as its
// last stdout line. The collector daemon joins here with one more entry.

const CONTENDERS = [
  {
    // The physical limit: the same request tcpinfo sends (one legacy TCPDIAG_GETSOCK, which
    // the kernel dumps as AF_UNSPEC: both families in one walk of the socket hash).
    name: 'drain',
    label: '(a) bare drain',
    argv: (o, n) => [join(BIN, 'drain'), '--polls', pollsFor(o, n), '--interval-ms', o.intervalMs, '--families', 'unspec'],
  },
  {
    // For reference: one SOCK_DIAG_BY_FAMILY request per family (M-Lab's way, and tcpinfo's
    // until the single dump): two walks.
    name: 'drain2',
    label: "(a'') bare drain, 2 dumps",
    argv: (o, n) => [join(BIN, 'drain'), '--polls', pollsFor(o, n), '--interval-ms', o.intervalMs, '--families', '4,6'],
  },
  {
    name: 'ss',
    label: '(b) ss -tinmeo',
    argv: (o, n) => [join(BIN, 'ss_contender'), '--polls', ssPollsFor(o, n), '--interval-ms', o.intervalMs],
  },
  {
    name: 'rust',
    label: '(c) tcpinfo Rust poll',
    // On a non-loopback farm the collector runs with its default local exclusion (a kernel
    // filter program); the Rust poll then does the same, so (e) ÷ (c) compares like with like.
    argv: (o, n, all) => [join(BIN, 'poll'), '--polls', pollsFor(o, n), '--warmup', warmupFor(o, n), '--interval-ms', o.intervalMs, ...(all ? ['--report-all', 1] : []), ...(o.netOctet === 127 ? [] : ['--exclude-local', 1])],
  },
  {
    // The BPF poll mode (issue #16): the iter/tcp program reports changed sockets, each is
    // fetched with an exact inet_diag request. Sockets per poll = sockets the program walked.
    name: 'bpf',
    label: '(g) tcpinfo BPF mode',
    argv: (o, n, all) => [join(BIN, 'poll'), '--mode', 'bpf', '--polls', pollsFor(o, n), '--warmup', warmupFor(o, n), '--interval-ms', o.intervalMs, ...(all ? ['--report-all', 1] : []), ...(o.netOctet === 127 ? [] : ['--exclude-local', 1])],
  },
  {
    // The walk alone: only the TCP state counts, so the program skips its fingerprint.
    name: 'bpfwalk',
    label: "(g') BPF walk, state only",
    argv: (o, n) => [join(BIN, 'poll'), '--mode', 'bpf', '--state-only', 1, '--polls', pollsFor(o, n), '--warmup', warmupFor(o, n), '--interval-ms', o.intervalMs],
  },
  {
    name: 'node',
    label: '(d) tcpinfo watch()',
    argv: (o, n, all) => [process.execPath, join(ROOT, 'bench', 'node_contender.mjs'), '--polls', pollsFor(o, n), '--warmup', warmupFor(o, n), '--interval-ms', o.intervalMs, ...(all ? ['--report-all'] : [])],
    available: () => (existsSync(join(ROOT, 'dist', 'index.js')) && nativeAddon() ? null : 'dist/ or the native addon is missing: run npm install (or npm run build)'),
  },
  {
    // The real collector (`Collector`, what `tcpinfo collect` runs) archiving to a scratch
    // directory with its defaults; steady state over whole flush cycles (issue #9).
    name: 'collector',
    label: '(e) tcpinfo collect',
    argv: (o, n) => [process.execPath, join(ROOT, 'bench', 'collector_contender.mjs'), '--polls', pollsFor(o, n), '--warmup', warmupFor(o, n), '--interval-ms', o.intervalMs, ...(o.netOctet === 127 ? [] : ['--exclude-local']), ...(o.maxOpenFiles ? ['--max-open-files', o.maxOpenFiles] : [])],
    available: () => (existsSync(join(ROOT, 'dist', 'collector', 'collector.js')) && nativeAddon() ? null : 'dist/ or the native addon is missing: run npm install (or npm run build)'),
  },
  {
    // M-Lab's tcp-info v1.9 itself, optional: --mlab-bin PATH (built outside the repository).
    name: 'mlab',
    label: "(f) M-Lab tcp-info",
    argv: (o) => [process.execPath, join(ROOT, 'bench', 'mlab_contender.mjs'), '--mlab-bin', o.mlabBin, '--window-s', o.mlabWindowS],
    available: (o) => (o.mlabBin ? (existsSync(o.mlabBin) ? null : `--mlab-bin ${o.mlabBin} does not exist`) : 'no --mlab-bin given'),
  },
]

// ---------------------------------------------------------------------------------------------
// Small helpers

function fail(msg) {
  console.error(`bench/run.mjs: ${msg}`)
  process.exit(2)
}
const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const log = (msg) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`)

function sh(cmd, args, { check = true } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (check && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`)
  return (r.stdout ?? '').trim()
}

function nativeAddon() {
  const dir = join(ROOT, 'native')
  if (!existsSync(dir)) return null
  const f = readdirSync(dir).find((x) => x.endsWith('.node'))
  return f ? join(dir, f) : null
}

function newestMtime(dir) {
  let newest = 0
  if (!existsSync(dir)) return 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

/**
 * TCP sockets allocated in the whole kernel (`/proc/net/sockstat` "alloc" is global, across
 * namespaces). Every inet_diag dump walks the one shared socket hash, so foreign sockets (a
 * leftover farm, another user's tests) slow every contender: 100k of them made a 1k-socket
 * drain 12x slower here.
 */
function globalTcpAlloc() {
  return Number(/^TCP:.* alloc (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? NaN)
}

/** CPU time of the whole machine so far, ns (busy = all but idle and iowait). */
function machineBusyNs() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const [user, nice, system, , , irq, softirq, steal] = f
  return ((user + nice + system + irq + softirq + (steal ?? 0)) * 1e9) / 100 // USER_HZ = 100
}

function machineFacts() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown'
  const read = (p) => { try { return readFileSync(p, 'utf8').trim() } catch { return null } }
  const addon = nativeAddon()
  const addonMtime = addon ? statSync(addon).mtimeMs : 0
  const coreSrc = Math.max(newestMtime(join(ROOT, 'crates', 'tcpinfo-core', 'src')), newestMtime(join(ROOT, 'crates', 'tcpinfo-node', 'src')))
  const distMtime = existsSync(join(ROOT, 'dist', 'index.js')) ? newestMtime(join(ROOT, 'dist')) : 0
  return {
    kernel: sh('uname', ['-r']),
    cpu_model: model,
    cores: cpus().length,
    mem_gib: Number((totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    ss: sh('ss', ['-V'], { check: false }),
    congestion_control: read('/proc/sys/net/ipv4/tcp_congestion_control'),
    tcp_ehash_entries: Number(read('/proc/sys/net/ipv4/tcp_ehash_entries')) || null,
    idiag_ext: '0xff',
    idiag_states: '0xf37',
    families: 'AF_INET + AF_INET6 in one AF_UNSPEC dump (TCPDIAG_GETSOCK)',
    git_head: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { check: false }),
    git_dirty: sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'crates', 'src'], { check: false }) !== '',
    native_addon_stale: addon ? addonMtime < coreSrc : null,
    native_addon_built: addon ? new Date(addonMtime).toISOString() : null,
    core_sources_newest: coreSrc ? new Date(coreSrc).toISOString() : null,
    dist_stale: distMtime ? distMtime < newestMtime(join(ROOT, 'src')) : null,
    loadavg_start: read('/proc/loadavg'),
    root_ns_timewait: /timewait (\d+)/.exec(sh('ss', ['-s'], { check: false }))?.[1] ?? null,
  }
}

// ---------------------------------------------------------------------------------------------
// Namespaces and processes

let nsCounter = 0
const liveNamespaces = new Set()
const liveChildren = new Set()

function createNamespace(o) {
  if (!o.netns) return null
  const ns = `tcpinfo-bench-${process.pid}-${nsCounter++}`
  sh('ip', ['netns', 'add', ns])
  liveNamespaces.add(ns)
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  // A non-loopback farm (M-Lab's tcp-info never archives loopback connections): the whole
  // A.0.0.0/8 is local on lo, as 127/8 is.
  if (o.netOctet !== 127) sh('ip', ['-n', ns, 'route', 'add', 'local', `${o.netOctet}.0.0.0/8`, 'dev', 'lo'])
  if (o.netem) {
    const r = spawnSync('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', ...o.netem.split(/\s+/).filter(Boolean)], { encoding: 'utf8' })
    if (r.status !== 0) {
      deleteNamespace(ns)
      const noNetem = /unknown/i.test(r.stderr ?? '') ? ' (this kernel has no sch_netem: CONFIG_NET_SCH_NETEM is not set)' : ''
      throw new Error(`tc qdisc add dev lo root netem ${o.netem}: ${(r.stderr ?? '').trim()}${noNetem}`)
    }
  }
  return ns
}

function deleteNamespace(ns) {
  if (!ns) return
  sh('ip', ['netns', 'del', ns], { check: false })
  liveNamespaces.delete(ns)
}

/** argv run inside `ns` (with cgroup2 mounted, which `ss -e` needs under `ip netns exec`). */
function inNs(ns, argv) {
  const args = argv.map(String)
  if (!ns) return args
  return ['ip', 'netns', 'exec', ns, 'sh', '-c', 'mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null; exec "$@"', 'sh', ...args]
}

/** A started process whose stdout is split into lines; `waitLine(re)` resolves on a match. */
function start(argv, { stderr = 'inherit' } = {}) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', stderr] })
  liveChildren.add(child)
  const lines = []
  const waiters = []
  let partial = ''
  let stderrText = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d) => {
    partial += d
    let i
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i)
      partial = partial.slice(i + 1)
      lines.push(line)
      for (const w of [...waiters]) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line) }
    }
  })
  if (stderr === 'pipe') {
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d) => { stderrText += d })
  }
  const exited = new Promise((res) => child.on('close', (code, signal) => {
    liveChildren.delete(child)
    if (partial) lines.push(partial)
    for (const w of waiters) w.reject(new Error(`${argv.join(' ')} exited (${code ?? signal}) before printing ${w.re}`))
    res({ code, signal })
  }))
  return {
    child, lines, exited,
    stderr: () => stderrText,
    waitLine(re, timeoutMs) {
      const hit = lines.find((l) => re.test(l))
      if (hit) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          if (waiters.includes(w)) { waiters.splice(waiters.indexOf(w), 1); reject(new Error(`timeout waiting for ${re} from ${argv.join(' ')}`)) }
        }, timeoutMs)
        const w = { re, resolve: (v) => { clearTimeout(timer); resolve(v) }, reject: (e) => { clearTimeout(timer); reject(e) } }
        waiters.push(w)
      })
    },
  }
}

/** Runs one contender to completion; returns its JSON report plus the machine's other load. */
async function runContender(ns, argv, timeoutMs) {
  const busy0 = machineBusyNs()
  const t0 = process.hrtime.bigint()
  const p = start(inNs(ns, argv), { stderr: 'pipe' })
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs)
  const { code, signal } = await p.exited
  clearTimeout(timer)
  const wallNs = Number(process.hrtime.bigint() - t0)
  const busy = machineBusyNs() - busy0
  const last = p.lines.filter((l) => l.startsWith('{')).at(-1)
  if (code !== 0 || !last) throw new Error(`${argv.join(' ')} failed (${code ?? signal}): ${p.stderr().trim().split('\n').slice(-3).join(' | ')}`)
  const report = JSON.parse(last)
  const own = report.user_ns_total + report.sys_ns_total
  // Busy CPU of everything else (the farm, other users) while this ran, % of all cores.
  report.other_cpu_pct = Number(Math.max(0, ((busy - own) / (wallNs * cpus().length)) * 100).toFixed(1))
  if (p.stderr().trim()) report.stderr_tail = p.stderr().trim().split('\n').slice(-2).join(' | ')
  return report
}

async function startFarm(ns, args, setupTimeoutS) {
  const farm = start(inNs(ns, [join(BIN, 'farm'), ...args, '--setup-timeout-s', setupTimeoutS]))
  const t0 = Date.now()
  await farm.waitLine(/^ready \d+/, (setupTimeoutS + 30) * 1000)
  farm.readyMs = Date.now() - t0
  return farm
}

async function stopFarm(farm) {
  if (farm.child.exitCode === null) farm.child.kill('SIGTERM')
  await farm.exited
  const done = farm.lines.find((l) => l.startsWith('done '))
  return done ? JSON.parse(done.slice(5)) : null
}

function cleanup() {
  for (const c of liveChildren) c.kill('SIGKILL')
  for (const ns of liveNamespaces) sh('ip', ['netns', 'del', ns], { check: false })
}
process.on('SIGINT', () => { cleanup(); process.exit(130) })
process.on('SIGTERM', () => { cleanup(); process.exit(143) })

// ---------------------------------------------------------------------------------------------
// The sweep

async function measureSize(o, n, p, tools, farmIntervalMs, reportAll = false) {
  const connections = Math.max(1, Math.round(n / 2))
  const ns = createNamespace(o)
  // reportAll: an idle farm, and every socket reported every poll by the change rule.
  const entry = { sockets: n, connections, change_fraction: reportAll ? 1 : p, report_all: reportAll, farm_interval_ms: farmIntervalMs, netem: o.netem, rounds: [], median: {} }
  let farm
  entry.foreign_tcp_sockets = globalTcpAlloc()
  if (entry.foreign_tcp_sockets > Math.max(1000, n / 10)) {
    log(`warning: ${entry.foreign_tcp_sockets} TCP sockets already exist in the kernel (other namespaces included); every dump walks them, so this run is slowed`)
  }
  try {
    // Upper bound on the run: the farm stops by itself even if this script dies.
    farm = await startFarm(ns, ['--connections', connections, '--change-fraction', reportAll ? 0 : p, '--interval-ms', farmIntervalMs, '--duration-s', 3600, '--net-octet', o.netOctet], 600)
    entry.farm_ready_ms = farm.readyMs
    entry.timewait_before = ns ? Number(/timewait (\d+)/.exec(sh('ip', ['netns', 'exec', ns, 'ss', '-s']))?.[1] ?? NaN) : null
    for (let r = 0; r < o.rounds; r++) {
      const order = tools.map((_, i) => tools[(i + r) % tools.length])
      for (const c of order) {
        log(`N=${n} p=${reportAll ? 'all (report-all)' : p} round ${r + 1}/${o.rounds}: ${c.name}`)
        if (reportAll && !['rust', 'node'].includes(c.name)) continue // only tcpinfo's poll has a report-all switch
        const report = await runContender(ns, c.argv(o, n, reportAll), 15 * 60 * 1000)
        entry.rounds.push({ round: r, tool: c.name, report })
      }
    }
  } finally {
    if (farm) entry.farm_done = await stopFarm(farm)
    deleteNamespace(ns)
  }
  for (const c of tools) {
    const reports = entry.rounds.filter((x) => x.tool === c.name).map((x) => x.report)
    if (reports.length) entry.median[c.name] = medianReport(reports)
  }
  return entry
}

/**
 * The poll period at N sockets, in whole ms: the poll interval plus the bare drain's wall p50
 * (every contender sleeps the interval after each poll). The farm changes p of its connections
 * once per period, so p is the fraction of sockets changed between two polls, whatever N.
 * Taken from the p=0 run at that N, or measured with a short p=0 farm.
 */
async function pollPeriodMs(o, n, sizes) {
  const known = sizes.find((e) => e.sockets === n && e.change_fraction === 0 && e.median.drain)
  let wallUs = known?.median.drain.wall_us_p50
  if (wallUs === undefined) {
    log(`N=${n}: calibrating the poll period`)
    const ns = createNamespace(o)
    let farm
    try {
      farm = await startFarm(ns, ['--connections', Math.max(1, Math.round(n / 2)), '--duration-s', 3600, '--net-octet', o.netOctet], 600)
      wallUs = (await runContender(ns, [join(BIN, 'drain'), '--polls', 10, '--interval-ms', o.intervalMs, '--families', 'unspec'], 10 * 60 * 1000)).wall_us_p50
    } finally {
      if (farm) await stopFarm(farm)
      deleteNamespace(ns)
    }
  }
  return Math.max(1, Math.round(o.intervalMs + wallUs / 1000))
}

/** Per-field median over rounds (peaks: the maximum). */
function medianReport(reports) {
  if (reports.length === 0) return null
  const out = { ...reports[0], rounds: reports.length }
  for (const k of Object.keys(reports[0])) {
    const vals = reports.map((r) => r[k]).filter((v) => typeof v === 'number')
    if (vals.length !== reports.length) continue
    out[k] = /hwm|peak|max/.test(k) ? Math.max(...vals) : median(vals)
  }
  const cpu = reports.map((r) => r.user_ns_per_socket + r.sys_ns_per_socket)
  out.cpu_ns_per_socket = median(cpu)
  out.cpu_ns_per_socket_spread = reports.length > 1 ? [Math.min(...cpu), Math.max(...cpu)] : null
  return out
}
function median(v) {
  const s = [...v].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// ---------------------------------------------------------------------------------------------
// Churn: every connection the farm closed must be reported closed, with its final counters.

async function churnCheck(o, rate, stamp) {
  const ns = createNamespace(o)
  const churnLog = join(o.out, `${stamp}-churn-${rate}.json`)
  const closedLog = join(o.out, `${stamp}-closed-${rate}.jsonl`)
  const entry = { churn_per_s: rate, seconds: o.churnSeconds, connections: o.churnConnections, churn_log: churnLog, closed_log: closedLog }
  let poller
  try {
    // The collector runs first, as in production: the farm's whole life happens under it.
    poller = start(inNs(ns, [join(BIN, 'poll'), '--polls', 0, '--interval-ms', o.intervalMs, '--closed-log', closedLog, '--announce']), { stderr: 'pipe' })
    await poller.waitLine(/^ready$/, 30000)
    log(`churn R=${rate}/s for ${o.churnSeconds} s over ${o.churnConnections} connections`)
    const farm = await startFarm(ns, ['--connections', o.churnConnections, '--churn', rate, '--interval-ms', o.intervalMs, '--duration-s', o.churnSeconds, '--churn-log', churnLog], 300)
    await farm.exited
    entry.farm_done = JSON.parse(farm.lines.find((l) => l.startsWith('done '))?.slice(5) ?? 'null')
    await sleep(500) // a few more polls after the farm's last close
    poller.child.kill('SIGINT')
    const { code } = await poller.exited
    const last = poller.lines.filter((l) => l.startsWith('{')).at(-1)
    if (code !== 0 || !last) throw new Error(`poll failed (${code}): ${poller.stderr()}`)
    entry.poll = JSON.parse(last)
  } finally {
    if (poller && poller.child.exitCode === null) poller.child.kill('SIGKILL')
    deleteNamespace(ns)
  }
  Object.assign(entry, compareChurn(JSON.parse(readFileSync(churnLog, 'utf8')).closed, readFileSync(closedLog, 'utf8')))
  return entry
}

function compareChurn(farmClosed, closedJsonl) {
  const reported = new Map()
  let duplicates = 0
  for (const line of closedJsonl.split('\n')) {
    if (!line.trim()) continue
    const r = JSON.parse(line)
    if (reported.has(r.cookie)) duplicates++
    else reported.set(r.cookie, r)
  }
  const res = { sockets_logged: farmClosed.length, unsettled: 0, reported: 0, misses: 0, without_final: 0, wrong: 0, wrong_examples: [], duplicates, closed_records: reported.size + duplicates }
  for (const f of farmClosed) {
    if (!f.settled) res.unsettled++
    const r = reported.get(f.cookie)
    if (!r) { res.misses++; continue }
    res.reported++
    if (!r.has_payload || r.bytes_acked === null) { res.without_final++; continue }
    if (r.bytes_acked !== f.bytes_acked || r.bytes_received !== f.bytes_received) {
      res.wrong++
      if (res.wrong_examples.length < 5) res.wrong_examples.push({ cookie: f.cookie, side: f.side, settled: f.settled, farm: [f.bytes_acked, f.bytes_received], tcpinfo: [r.bytes_acked, r.bytes_received] })
    }
  }
  res.churned_connections = farmClosed.length / 2
  return res
}

// ---------------------------------------------------------------------------------------------
// The table

const fmt = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }))
const ratio = (a, b) => (a && b ? a / b : null)
const kilo = (n) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n))
const pct = (p) => `${Number((p * 100).toFixed(2))}%`
/** The p column: "all†" for the uncontended every-socket-every-poll row (--report-all). */
const pOf = (e) => (e.report_all ? 'all†' : pct(e.change_fraction))
const REPORT_ALL_NOTE = '† every socket reported every poll with an idle farm: both tcpinfo contenders count every tcp_info field as a change (the last_* elapsed times change every poll), so the encode and JS path run at p = 100% without the farm loading the machine.'

function render(meta, sizes, churn, targets) {
  const out = []
  out.push(`### Machine`, '')
  out.push(`Kernel ${meta.kernel}, ${meta.cpu_model}, ${meta.cores} cores, ${meta.mem_gib} GiB; Node ${meta.node}; ${meta.ss}; default CC ${meta.congestion_control}; ` +
    `idiag_ext ${meta.idiag_ext}, states ${meta.idiag_states}, ${meta.families}; ${meta.netns ? 'fresh network namespace per farm run' : 'current network namespace'}` +
    `${meta.netem ? `, netem on lo: ${meta.netem}` : ''}; commit ${meta.git_head}${meta.git_dirty ? ' (dirty)' : ''}; ${meta.mode} run, ${meta.rounds} round(s), medians.`)
  if (meta.native_addon_stale) out.push('', `**Warning:** the native addon is older than the core sources: (d) measured an old build (run \`npm run build:native\`).`)
  const polluted = sizes.filter((e) => e.foreign_tcp_sockets > Math.max(1000, e.sockets / 10))
  if (polluted.length) out.push('', `**Warning:** foreign TCP sockets existed during ${polluted.map((e) => `N=${kilo(e.sockets)} p=${pOf(e)} (${e.foreign_tcp_sockets})`).join(', ')}: every dump walks them too.`)
  out.push('', '### Per poll (N = sockets in the dump; p = fraction changed per poll period; CPU per socket per poll; ratios of total CPU, ÷ drain against (a))', '')
  out.push('| N | p | contender | polls | wall p50 ms | wall p99 ms | user ns | sys ns | CPU ns | ÷ drain | ÷ ss | recvmsg | bytes | records/poll | RSS MB (peak) | other load |')
  out.push('|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
  for (const e of sizes) {
    const drain = e.median.drain?.cpu_ns_per_socket
    const ss = e.median.ss?.cpu_ns_per_socket
    for (const c of CONTENDERS) {
      const m = e.median[c.name]
      if (!m) continue
      const rss = m.rss_kb !== undefined ? `${fmt(m.rss_kb / 1024, 1)} (${fmt(m.rss_hwm_kb / 1024, 1)})` : '–'
      out.push(`| ${kilo(e.sockets)} | ${pOf(e)} | ${c.label} | ${m.polls} | ${fmt(m.wall_us_p50 / 1e3, 2)} | ${fmt(m.wall_us_p99 / 1e3, 2)} | ` +
        `${fmt(m.user_ns_per_socket)} | ${fmt(m.sys_ns_per_socket)} | ${fmt(m.cpu_ns_per_socket)} | ${c.name === 'drain' ? '1' : fmt(ratio(m.cpu_ns_per_socket, drain), 2)} | ` +
        `${c.name === 'ss' ? '1' : fmt(ratio(m.cpu_ns_per_socket, ss), 2)} | ${fmt(m.recvmsg_per_socket, 4)} | ${fmt(m.bytes_per_socket)} | ` +
        `${m.records_per_poll === undefined ? '–' : fmt(m.records_per_poll, 1)} | ${rss} | ${fmt(m.other_cpu_pct)}% |`)
    }
  }
  if (sizes.some((e) => e.report_all)) out.push('', REPORT_ALL_NOTE)
  const volume = sizes.filter((e) => e.median.rust)
  if (volume.length) {
    out.push('', '### Output volume (Rust poll; per connection-second = per socket per second of polling)', '')
    out.push('| N | p | farm interval | changed/poll (% of N) | records per conn·s | JSON bytes per conn·s | JSON bytes per record | framed bytes per record | first poll (all opened) |')
    out.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
    for (const e of volume) {
      const m = e.median.rust
      const rec = m.records_total || 0
      out.push(`| ${kilo(e.sockets)} | ${pOf(e)} | ${e.change_fraction && !e.report_all ? `${e.farm_interval_ms} ms` : '–'} | ${fmt(m.changed_total / m.polls, 1)} (${fmt((100 * m.changed_total) / m.polls / e.sockets, 2)}%) | ${fmt(m.records_per_conn_s, 3)} | ${fmt(m.line_bytes_per_conn_s, 1)} | ` +
        `${rec ? fmt(m.line_bytes_total / rec) : '–'} | ${rec ? fmt(m.framed_bytes_total / rec) : '–'} | ${fmt(m.first_poll_wall_us / 1e3, 1)} ms, ${fmt((m.first_poll_bytes ?? m.warmup_framed_bytes) / 2 ** 20, 1)} MiB |`)
    }
  }
  const coll = sizes.filter((e) => e.median.collector || e.median.mlab)
  if (coll.length) {
    out.push('', '### Collector (issue #9): the real collector archiving, against its own poll and M-Lab\'s tcp-info (CPU per poll: whole process, all threads; M-Lab: the tcp-info process, its zstd children apart)', '')
    out.push('| N | p | (c) poll ms/poll | (e) collector ms/poll | (e) ÷ (c) | writer thread ms/poll | records/poll | writer user µs/record | B/record (zstd) | (e) RSS MB (peak) | (f) M-Lab ms/poll | + its zstd ms/poll | (e) ÷ (f) | M-Lab poll period ms | M-Lab fds | M-Lab RSS MB (+ zstd) |')
    out.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
    const ms = (m) => (m ? ((m.user_ns_per_socket + m.sys_ns_per_socket) * m.sockets_per_poll) / 1e6 : null)
    for (const e of coll) {
      const c = e.median.collector
      const r = e.median.rust
      const m = e.median.mlab
      const mOk = m && !m.failed && m.user_ns_per_socket !== null && m.user_ns_per_socket !== undefined
      out.push(`| ${kilo(e.sockets)} | ${pOf(e)} | ${fmt(ms(r), 2)} | ${fmt(ms(c), 2)} | ${c && r ? fmt(c.cpu_ns_per_socket / r.cpu_ns_per_socket, 2) : '–'} | ${c ? fmt(c.writer_run_ns / 1e6 / c.polls, 3) : '–'} | ` +
        `${c ? fmt(c.records_per_poll, 1) : '–'} | ${c ? fmt(c.writer_user_ns_per_record / 1e3, 2) : '–'} | ${c ? fmt(c.archive_bytes_per_record, 1) : '–'} | ${c ? `${fmt(c.rss_kb / 1024, 1)} (${fmt(c.rss_hwm_kb / 1024, 1)})` : '–'} | ` +
        `${mOk ? fmt(ms(m), 2) : m?.failed ? `failed: ${m.failed}` : '–'} | ${mOk ? fmt(m.zstd_cpu_ms_per_poll, 2) : '–'} | ${c && mOk ? fmt(c.cpu_ns_per_socket / m.cpu_ns_per_socket, 2) : '–'} | ` +
        `${mOk ? fmt(m.mean_poll_period_ms, 1) : '–'} | ${m ? fmt(m.fds) : '–'} | ${mOk ? `${fmt(m.rss_kb / 1024, 1)} (+${fmt(m.zstd_rss_kb_total / 1024)})` : '–'} |`)
    }
  }
  if (churn.length) {
    out.push('', '### Churn (every closed connection reported, with its final counters; Rust poll vs the farm\'s churn log)', '')
    out.push('| R/s | s | connections held | churned conns | closed sockets logged | reported | misses | without final counters | wrong counters | unsettled in farm | duplicate closes | destroy overruns |')
    out.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
    for (const c of churn) {
      if (c.error) { out.push(`| ${c.churn_per_s} | ${c.seconds} | ${c.connections} | error: ${c.error} |||||||||`); continue }
      out.push(`| ${c.churn_per_s} | ${c.seconds} | ${c.connections} | ${fmt(c.churned_connections)} | ${fmt(c.sockets_logged)} | ${fmt(c.reported)} | **${c.misses}** | ${c.without_final} | **${c.wrong}** | ${c.unsettled} | ${c.duplicates} | ${c.poll?.destroy_overruns ?? '–'} |`)
    }
  }
  out.push('', '### Targets', '')
  out.push('| target | measured | verdict |')
  out.push('|---|---|---|')
  for (const t of targets) out.push(`| ${t.target} | ${t.measured} | ${t.verdict} |`)
  return out.join('\n')
}

/** (a ÷ b) of total CPU per socket, round by round: the spread behind a median ratio. */
/** The spread of a ÷ b over the rounds, plus `shift` (−1 for an overhead), as " (rounds x–y)". */
function roundRatios(entry, a, b, shift = 0) {
  const cpu = (tool, r) => entry.rounds.find((x) => x.tool === tool && x.round === r)?.report
  const out = []
  for (let r = 0; ; r++) {
    const x = cpu(a, r)
    const y = cpu(b, r)
    if (!x || !y) break
    out.push((x.user_ns_per_socket + x.sys_ns_per_socket) / (y.user_ns_per_socket + y.sys_ns_per_socket) + shift)
  }
  if (out.length < 2) return ''
  const f = (v) => (shift ? `${(v * 100).toFixed(0)}%` : v.toFixed(2))
  return ` (rounds ${f(Math.min(...out))}–${f(Math.max(...out))})`
}

function evaluateTargets(sizes, churn) {
  const t = []
  const verdict = (ok, note = '') => (ok === null ? 'not measured' : ok ? `met${note}` : `**missed**${note}`)
  const largest = Math.max(...sizes.map((e) => e.sockets))
  const at = (n, p) => sizes.find((e) => e.sockets === n && e.change_fraction === p && !e.report_all)
  const big1 = at(largest, 0.01) ?? sizes.filter((e) => e.sockets === largest).at(-1)
  const note = largest < 100000 ? ` (at ${kilo(largest)}; the target is at 100k)` : ''
  if (big1?.median.rust && big1.median.drain) {
    const r = big1.median.rust.cpu_ns_per_socket / big1.median.drain.cpu_ns_per_socket
    t.push({ target: 'poll CPU ≤ 1.15× bare drain, 100k sockets, p = 1%', measured: `${r.toFixed(3)}×${roundRatios(big1, 'rust', 'drain')} (${fmt(big1.median.rust.cpu_ns_per_socket)} vs ${fmt(big1.median.drain.cpu_ns_per_socket)} ns/socket, N=${kilo(big1.sockets)}, p=${pct(big1.change_fraction)})`, verdict: verdict(r <= 1.15, note), value: r })
  }
  const big0 = at(largest, 0)
  if (big0?.median.rust) {
    const u = big0.median.rust.user_ns_per_socket
    t.push({ target: 'user CPU ≤ 0.3 µs per unchanged socket per poll', measured: `${fmt(u)} ns (Rust poll, N=${kilo(largest)}, p=0)${big0.median.node ? `; watch(): ${fmt(big0.median.node.user_ns_per_socket)} ns` : ''}`, verdict: verdict(u <= 300, note), value: u })
  }
  if (big1?.median.rust && big1.median.ss) {
    const r = big1.median.rust.cpu_ns_per_socket / big1.median.ss.cpu_ns_per_socket
    const all = sizes.filter((e) => e.median.rust && e.median.ss).map((e) => e.median.rust.cpu_ns_per_socket / e.median.ss.cpu_ns_per_socket)
    t.push({ target: 'CPU ≤ 0.5× ss -tinmeo', measured: `${r.toFixed(3)}× at N=${kilo(big1.sockets)}, p=${pct(big1.change_fraction)} (all runs: ${Math.min(...all).toFixed(2)}–${Math.max(...all).toFixed(2)}×)`, verdict: verdict(Math.max(...all) <= 0.5), value: r })
  }
  const bigAny = sizes.filter((e) => e.sockets === largest && e.median.rust && !e.report_all)
  if (bigAny.length) {
    const hwm = Math.max(...bigAny.map((e) => e.median.rust.rss_hwm_kb)) / 1024
    // Steady state and per-connection memory are taken at the lowest change rate: at p = 100%
    // the records pool legitimately holds a few batches' worth of buffers (working memory).
    const idle = [...bigAny].sort((a, b) => a.change_fraction - b.change_fraction)[0]
    // After the warm-up the pool may still hold the first poll's buffers (freed within ~10
    // polls); the end of the run shows the state it settles to.
    const steady = idle.median.rust.rss_kb_after_warmup / 1024
    const settled = idle.median.rust.rss_kb / 1024
    const nodeHwm = Math.max(0, ...bigAny.filter((e) => e.median.node).map((e) => e.median.node.rss_hwm_kb)) / 1024
    t.push({ target: 'RSS ≤ 150 MB at 100k tracked connections', measured: `Rust: peak ${fmt(hwm, 1)} MB (first poll), ${fmt(steady, 1)} MB after the warm-up and ${fmt(settled, 1)} MB at the end at p=${pct(idle.change_fraction)}${nodeHwm ? `; watch(): peak ${fmt(nodeHwm, 1)} MB` : ''} (N=${kilo(largest)})`, verdict: nodeHwm > 150 && hwm <= 150 ? `met by the Rust core; **missed** through watch()${note}` : verdict(hwm <= 150 && (!nodeHwm || nodeHwm <= 150), note), value: hwm })
    const per = idle.median.rust.heap_bytes_per_tracked
    const own = idle.median.rust.tracker_bytes_per_tracked ?? NaN
    t.push({ target: 'per-connection state ≤ 64 bytes', measured: `tracker ${fmt(own, 1)} B per tracked connection (its own count); whole poller heap ${fmt(per, 1)} B per connection incl. fixed buffers (counting allocator; N=${kilo(largest)}, p=${pct(idle.change_fraction)})`, verdict: verdict((Number.isNaN(own) ? per : own) <= 64, note), value: Number.isNaN(own) ? per : own })
  }
  if (churn.length) {
    const misses = churn.reduce((a, c) => a + (c.misses ?? 0), 0)
    const wrong = churn.reduce((a, c) => a + (c.wrong ?? 0) + (c.without_final ?? 0), 0)
    const errors = churn.filter((c) => c.error).length
    t.push({ target: 'zero missed connections and zero wrong final counters under churn', measured: `${misses} missed, ${wrong} wrong or without final counters over ${churn.map((c) => `R=${c.churn_per_s}/s`).join(', ')}${errors ? `, ${errors} run(s) failed` : ''}`, verdict: verdict(errors ? false : misses === 0 && wrong === 0), value: misses + wrong })
  }
  const withColl = sizes.filter((e) => e.median.collector && e.median.rust && !e.report_all)
  if (withColl.length) {
    const r = withColl.map((e) => e.median.collector.cpu_ns_per_socket / e.median.rust.cpu_ns_per_socket)
    t.push({ target: 'collector steady CPU per poll ≤ 1.1× tcpinfo\'s own poll at the same change rate (issue #9)', measured: withColl.map((e, i) => `N=${kilo(e.sockets)} p=${pOf(e)}: ${r[i].toFixed(2)}×${roundRatios(e, 'collector', 'rust')}`).join('; '), verdict: verdict(Math.max(...r) <= 1.1), value: Math.max(...r) })
    const rec = withColl.filter((e) => e.median.collector.archive_records_written >= 1000)
    if (rec.length) {
      const u = rec.map((e) => e.median.collector.writer_user_ns_per_record / 1e3)
      t.push({ target: 'writer user CPU ≤ 1.5 µs per archived record (issue #9)', measured: rec.map((e, i) => `N=${kilo(e.sockets)} p=${pOf(e)}: ${u[i].toFixed(2)} µs`).join('; '), verdict: verdict(Math.max(...u) <= 1.5), value: Math.max(...u) })
    }
  }
  const withMlab = sizes.filter((e) => e.median.collector && e.median.mlab && !e.median.mlab.failed && e.median.mlab.cpu_ns_per_socket)
  if (withMlab.length) {
    const r = withMlab.map((e) => e.median.collector.cpu_ns_per_socket / e.median.mlab.cpu_ns_per_socket)
    t.push({ target: 'collector steady CPU per poll ≈ 0.3× M-Lab tcp-info\'s (issue #9)', measured: withMlab.map((e, i) => `N=${kilo(e.sockets)} p=${pOf(e)}: ${r[i].toFixed(2)}×${roundRatios(e, 'collector', 'mlab')}`).join('; '), verdict: verdict(Math.max(...r) <= 0.35), value: Math.max(...r) })
  }
  const ten = sizes.filter((e) => e.sockets === 10000 && e.median.rust && e.median.node)
  if (ten.length) {
    const o = ten.map((e) => e.median.node.cpu_ns_per_socket / e.median.rust.cpu_ns_per_socket - 1)
    const worst = Math.max(...o)
    const missedAt = ten.filter((_, i) => o[i] >= 0.1).map(pOf)
    const metAt = ten.filter((_, i) => o[i] < 0.1).map(pOf)
    const v = missedAt.length === 0 || metAt.length === 0 ? verdict(worst < 0.1) : `met at p = ${metAt.join(', ')}; **missed** at p = ${missedAt.join(', ')}`
    t.push({ target: 'watch() overhead in Node over the Rust core < 10% at 10k sockets (issue #2)', measured: `${ten.map((e, i) => `p=${pOf(e)}: ${(o[i] * 100).toFixed(1)}%${roundRatios(e, 'node', 'rust', -1)}`).join(', ')} (total CPU per socket, (d) ÷ (c) − 1)`, verdict: v, value: worst })
  }
  return t
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2))
  if (o.render) {
    const { meta, sizes, churn } = JSON.parse(readFileSync(o.render, 'utf8'))
    console.log(render(meta, sizes, churn, evaluateTargets(sizes, churn)))
    return
  }
  if (process.getuid?.() !== 0 && o.netns) fail('network namespaces need root (or run with --no-netns)')
  if (o.build) {
    log('cargo build --release -p tcpinfo-bench')
    const r = spawnSync('cargo', ['build', '--release', '-p', 'tcpinfo-bench'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
    if (r.status !== 0) fail('cargo build --release -p tcpinfo-bench failed')
  }
  for (const b of ['farm', 'drain', 'poll', 'ss_contender']) if (!existsSync(join(BIN, b))) fail(`${join(BIN, b)} is missing: run cargo build --release -p tcpinfo-bench`)
  const tools = []
  for (const name of o.tools) {
    const c = CONTENDERS.find((x) => x.name === name)
    const why = c.available?.(o)
    if (why) log(`skipping ${c.name}: ${why}`)
    else tools.push(c)
  }
  if (o.netem) {
    if (!o.netns) fail('--netem needs a namespace (drop --no-netns)')
    deleteNamespace(createNamespace(o)) // fails early, with the reason, if netem is unusable
  }
  mkdirSync(o.out, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)
  const meta = { ...machineFacts(), mode: o.quick ? 'quick' : 'full', rounds: o.rounds, netns: o.netns, netem: o.netem, interval_ms: o.intervalMs, args: process.argv.slice(2), started: new Date().toISOString() }
  if (meta.native_addon_stale) log('warning: the native addon is older than the core sources; the watch() contender measures an old build (npm run build:native)')
  if (meta.dist_stale) log('warning: dist/ is older than src/ (npm run build:ts)')
  const t0 = Date.now()
  const sizes = []
  for (const n of o.sizes) {
    for (const p of [...o.changes].sort((a, b) => a - b)) {
      let farmInterval = o.intervalMs
      if (p > 0) farmInterval = o.farmInterval === 'auto' ? await pollPeriodMs(o, n, sizes) : o.farmInterval
      sizes.push(await measureSize(o, n, p, tools, farmInterval))
    }
    if (o.reportAll.includes(n)) sizes.push(await measureSize(o, n, 1, tools, o.intervalMs, true))
  }
  const churn = []
  for (const rate of o.churn) {
    try {
      churn.push(await churnCheck(o, rate, stamp))
    } catch (e) {
      churn.push({ churn_per_s: rate, seconds: o.churnSeconds, connections: o.churnConnections, error: String(e.message ?? e) })
    }
  }
  meta.finished = new Date().toISOString()
  meta.seconds = Math.round((Date.now() - t0) / 1000)
  meta.loadavg_end = readFileSync('/proc/loadavg', 'utf8').trim()
  const targets = evaluateTargets(sizes, churn)
  const table = render(meta, sizes, churn, targets)
  const base = join(o.out, `${stamp}-${meta.mode}`)
  writeFileSync(`${base}.json`, JSON.stringify({ meta, sizes, churn, targets }, null, 1) + '\n')
  writeFileSync(`${base}.md`, table + '\n')
  console.log(table)
  log(`done in ${meta.seconds} s; raw results: ${base}.json, table: ${base}.md`)
}

main().catch((e) => {
  cleanup()
  console.error(`bench/run.mjs: ${process.env.BENCH_DEBUG ? e.stack : e.message ?? e}`)
  process.exit(1)
})
