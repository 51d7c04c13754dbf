#!/usr/bin/env node
// Whole-run CPU and SIGTERM measurements of `tcpinfo collect` (issue #9), on a farm in a fresh
// network namespace. See docs/BENCHMARKS.md, "Collector (issue 9)".
//
//   node bench/collector_lifecycle.mjs whole-run [--sockets 2000] [--reps 1000] [--rounds 3]
//                                     [--change-fraction 0] [--mlab-bin PATH]
//   node bench/collector_lifecycle.mjs sigterm [--connections 10000] [--rounds 3]
//                                     [--change-fraction 0.01] [--run-s 5]
//
// whole-run: `/usr/bin/time` of `tcpinfo collect -reps=R` (start-up, first poll with every
// socket opened, R polls, finishing every file), and of M-Lab's `tcp-info -reps=R` if
// --mlab-bin (its zstd children included: it waits for them), one after the other on the same
// farm, rounds alternated; medians. sigterm: `tcpinfo collect` over a farm of C connections
// (2C sockets, all archived), SIGTERM after --run-s, time to exit, exit status, and
// `zstd -t` of every file it wrote.
//
// The farm's addresses are in 10.0.0.0/8 (local on lo): M-Lab's tcp-info never archives
// loopback connections. Needs root, the bench binaries (cargo build --release -p
// tcpinfo-bench) and dist/ (npm install).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'target', 'release')
const CLI = join(ROOT, 'dist', 'cli', 'main.js')
/** Unlinks wait for discard on this ext4: a detached rm, so the measurement goes on. */
const removeLater = (dir) => spawn('rm', ['-rf', dir], { detached: true, stdio: 'ignore' }).unref()
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const log = (m) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`)
const median = (v) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }

function parseArgs(argv) {
  const o = { mode: argv[0], sockets: 2000, connections: 10000, reps: 1000, rounds: 3, 'change-fraction': null, 'mlab-bin': '', 'run-s': 5 }
  for (let i = 1; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i])
    if (!m || !(m[1] in o)) throw new Error(`unknown argument ${argv[i]}`)
    const v = m[2] ?? argv[++i]
    o[m[1]] = m[1] === 'mlab-bin' ? v : Number(v)
  }
  if (!['whole-run', 'sigterm'].includes(o.mode)) throw new Error('usage: collector_lifecycle.mjs whole-run|sigterm [options] (see the head of this file)')
  o['change-fraction'] ??= o.mode === 'sigterm' ? 0.01 : 0
  return o
}

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

const ns = `tcpinfo-bench9-${process.pid}`
const live = new Set()
function cleanup() {
  for (const c of live) c.kill('SIGKILL')
  spawnSync('ip', ['netns', 'del', ns])
}
process.on('SIGINT', () => { cleanup(); process.exit(130) })

/** `ip netns exec` with the namespace's cgroup2 mount, as run.mjs does. */
const inNs = (argv) => ['ip', 'netns', 'exec', ns, ...argv]

function startFarm(connections, p) {
  const farm = spawn(...(([c, ...a]) => [c, a])(inNs([join(BIN, 'farm'), '--connections', connections, '--change-fraction', p, '--duration-s', 3600, '--net-octet', 10].map(String))), { stdio: ['ignore', 'pipe', 'inherit'] })
  live.add(farm)
  return new Promise((res, rej) => {
    let buf = ''
    farm.stdout.on('data', (d) => { buf += d; if (/^ready \d+/m.test(buf)) res(farm) })
    farm.on('exit', (c) => rej(new Error(`farm exited (${c}) before ready`)))
  })
}

function files(dir) {
  const out = []
  const walk = (d) => { for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : out.push(join(d, e.name)) }
  if (existsSync(dir)) walk(dir)
  return out
}

/** Runs argv under /usr/bin/time in the namespace: user, sys, wall seconds, max RSS KB. */
function timed(argv) {
  const r = spawnSync('ip', ['netns', 'exec', ns, '/usr/bin/time', '-f', 'TIME %U %S %e %M', ...argv], { encoding: 'utf8', maxBuffer: 1 << 26 })
  const m = /TIME (\S+) (\S+) (\S+) (\d+)/.exec(r.stderr)
  if (r.status !== 0 || !m) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr.slice(-800)}`)
  return { user_s: Number(m[1]), sys_s: Number(m[2]), wall_s: Number(m[3]), max_rss_kb: Number(m[4]) }
}

async function wholeRun(o) {
  const farm = await startFarm(Math.round(o.sockets / 2), o['change-fraction'])
  const res = { sockets: o.sockets, reps: o.reps, change_fraction: o['change-fraction'], loadavg_start: sh('cat', ['/proc/loadavg']).trim(), collector: [], mlab: [] }
  try {
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 ? ['mlab', 'collector'] : ['collector', 'mlab']
      for (const tool of order) {
        if (tool === 'mlab' && !o['mlab-bin']) continue
        const out = mkdtempSync(join(tmpdir(), `tcpinfo-bench9-${tool}-`))
        try {
          log(`whole run, ${tool}, round ${r + 1}/${o.rounds}: ${o.reps} polls over ${o.sockets} sockets`)
          const argv = tool === 'mlab'
            ? [o['mlab-bin'], `-reps=${o.reps}`, `-output=${out}`, '-prometheusx.listen-address=127.0.0.1:0']
            : [process.execPath, CLI, 'collect', `-reps=${o.reps}`, `-output=${out}`, '--log-level=warn']
          const t = timed(argv)
          const fs = files(out)
          t.files = fs.length
          t.bytes = fs.reduce((a, f) => a + statSync(f).size, 0)
          t.cpu_s = Number((t.user_s + t.sys_s).toFixed(2))
          res[tool].push(t)
          log(`  ${JSON.stringify(t)}`)
        } finally {
          removeLater(out)
        }
      }
    }
  } finally {
    farm.kill('SIGTERM')
  }
  for (const tool of ['collector', 'mlab']) {
    if (!res[tool].length) continue
    res[`${tool}_median`] = Object.fromEntries(Object.keys(res[tool][0]).map((k) => [k, median(res[tool].map((x) => x[k]))]))
  }
  if (res.mlab_median) res.cpu_ratio = Number((res.collector_median.cpu_s / res.mlab_median.cpu_s).toFixed(3))
  res.loadavg_end = sh('cat', ['/proc/loadavg']).trim()
  return res
}

async function sigterm(o) {
  const farm = await startFarm(o.connections, o['change-fraction'])
  const res = { connections: o.connections, sockets: 2 * o.connections, change_fraction: o['change-fraction'], run_s: o['run-s'], loadavg_start: sh('cat', ['/proc/loadavg']).trim(), rounds: [] }
  try {
    for (let r = 0; r < o.rounds; r++) {
      const out = mkdtempSync(join(tmpdir(), 'tcpinfo-bench9-sigterm-'))
      try {
        const [c, ...a] = inNs([process.execPath, CLI, 'collect', `--output=${out}`])
        const child = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'] })
        live.add(child)
        let stderr = ''
        child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000) })
        const exited = new Promise((res2) => child.on('exit', (code, signal) => res2({ code, signal, t: process.hrtime.bigint() })))
        await sleep(o['run-s'] * 1000)
        const before = files(out).length
        // The collector is node under `ip netns exec` (exec'd, same pid).
        const t0 = process.hrtime.bigint()
        child.kill('SIGTERM')
        const ex = await Promise.race([exited, sleep(10000).then(() => null)])
        if (!ex) child.kill('SIGKILL')
        live.delete(child)
        const fs = files(out)
        let bad = 0
        for (let i = 0; i < fs.length; i += 500) {
          const z = spawnSync('zstd', ['-t', '-q', ...fs.slice(i, i + 500)], { encoding: 'utf8' })
          if (z.status !== 0) bad += (z.stderr.match(/\n/g) ?? []).length || 1
        }
        const round = { exit_ms: ex ? Number(ex.t - t0) / 1e6 : null, code: ex?.code ?? null, signal: ex?.signal ?? null, files_before_sigterm: before, files: fs.length, zstd_t_failed: bad, stderr_tail: stderr.trim().split('\n').slice(-2) }
        res.rounds.push(round)
        log(`sigterm round ${r + 1}/${o.rounds}: ${JSON.stringify(round)}`)
      } finally {
        removeLater(out)
      }
    }
  } finally {
    farm.kill('SIGTERM')
  }
  res.exit_ms_median = median(res.rounds.map((x) => x.exit_ms ?? Infinity))
  res.exit_ms_max = Math.max(...res.rounds.map((x) => x.exit_ms ?? Infinity))
  res.all_exit_0 = res.rounds.every((x) => x.code === 0)
  res.zstd_t_failed_total = res.rounds.reduce((a, x) => a + x.zstd_t_failed, 0)
  res.loadavg_end = sh('cat', ['/proc/loadavg']).trim()
  return res
}

async function main() {
  const o = parseArgs(process.argv.slice(2))
  for (const f of [join(BIN, 'farm'), CLI]) if (!existsSync(f)) throw new Error(`${f} is missing (cargo build --release -p tcpinfo-bench; npm install)`)
  sh('ip', ['netns', 'add', ns])
  try {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    sh('ip', ['-n', ns, 'route', 'add', 'local', '10.0.0.0/8', 'dev', 'lo'])
    const res = o.mode === 'whole-run' ? await wholeRun(o) : await sigterm(o)
    process.stdout.write(JSON.stringify(res) + '\n')
  } finally {
    await sleep(500)
    cleanup()
  }
}

main().catch((e) => {
  cleanup()
  process.stderr.write(`collector_lifecycle: ${e?.stack ?? e}\n`)
  process.exit(1)
})
