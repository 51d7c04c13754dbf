#!/usr/bin/env node
// What the BPF event mode costs the data path (issue 16): its tracepoint programs run on
// every TCP packet and socket call of the host, so a loopback transfer in the poller's
// namespace (the worst case: every mark goes through the whole program) is timed with and
// without a BPF-mode poller attached, alternately, several rounds. CPU = user + sys of
// the transfer process (both ends in one process: loopback softirq work runs in its
// context). Results: docs/BENCHMARKS.md, "BPF poll mode (issue 16)".
// Needs root and `cargo build --release -p tcpinfo-bench --bin poll`.
//
//   node bench/bpf-datapath.mjs [--rounds 3] [--stream-mb 2000] [--rr 100000] [--prog-stats 1]
//
// --prog-stats 1 also runs the round trips once more with `kernel.bpf_stats_enabled` on
// (restored after) and reports the poller's programs' own run counts and ns per run
// (`bpftool prog show`; the stats add two clock reads, ~20-40 ns, to every run): the
// figure that does not drown in the noise of a shared machine.
import { spawn, spawnSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const POLL = join(ROOT, 'target', 'release', 'poll')
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []))
const rounds = Number(args.rounds ?? 3)
const streamMb = Number(args['stream-mb'] ?? 2000)
const rr = Number(args.rr ?? 100000)
const ns = `bpfwt-dp-${process.pid}`
const sh = (cmd, a) => spawnSync(cmd, a, { stdio: 'ignore' })
sh('ip', ['netns', 'add', ns])
sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
let poller = null
const cleanup = () => {
  if (poller) poller.kill('SIGKILL')
  sh('ip', ['netns', 'del', ns])
}
process.on('SIGINT', () => { cleanup(); process.exit(130) })

// One process, both ends: a bulk stream (64 KiB writes) and 1-byte request/response.
const PY = `
import os, socket, sys, resource, threading
mode, n = sys.argv[1], int(sys.argv[2])
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
for x in (c, s): x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
r0 = resource.getrusage(resource.RUSAGE_SELF)
if mode == "stream":
    buf = b"x" * 65536
    def rd():
        left = n * 1048576
        while left > 0:
            left -= len(s.recv(1 << 20))
    t = threading.Thread(target=rd); t.start()
    for _ in range(n * 16): c.sendall(buf)
    t.join()
else:
    for _ in range(n):
        c.send(b"q"); s.recv(1); s.send(b"a"); c.recv(1)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
`
function transfer(mode, n) {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'python3', '-c', PY, mode, String(n)], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
  return Number(r.stdout.trim())
}

async function attach() {
  poller = spawn('ip', ['netns', 'exec', ns, POLL, '--mode', 'bpf', '--polls', '0', '--interval-ms', '1000'], { stdio: 'ignore' })
  await new Promise((r) => setTimeout(r, 1500)) // loaded and primed
}
function detach() {
  poller.kill('SIGINT')
  poller = null
  spawnSync('sleep', ['1'])
}

function progStats(pid) {
  const r = spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' })
  const out = {}
  const progs = JSON.parse(r.stdout || '[]').filter((p) => String(p.name ?? '').startsWith('ev_'))
  // bpftool without pid support lists no owners: then every ev_* program (run nothing else)
  const owned = progs.some((p) => p.pids) ? progs.filter((p) => (p.pids ?? []).some((x) => x.pid === pid)) : progs
  for (const p of owned) {
    const o = (out[p.name] ??= { runs: 0, ns: 0 })
    o.runs += p.run_cnt ?? 0
    o.ns += p.run_time_ns ?? 0
  }
  return out
}

let statsTable = ''
if (args['prog-stats'] === '1') {
  await attach()
  const pid = poller.pid
  sh('sysctl', ['-q', 'kernel.bpf_stats_enabled=1'])
  const before = progStats(pid)
  transfer('rr', rr)
  const after = progStats(pid)
  sh('sysctl', ['-q', 'kernel.bpf_stats_enabled=0'])
  detach()
  let total = 0
  const lines = []
  for (const [name, a] of Object.entries(after)) {
    const b = before[name] ?? { runs: 0, ns: 0 }
    const runs = a.runs - b.runs
    const ns = a.ns - b.ns
    if (runs === 0) continue
    total += ns
    lines.push(`| ${name} | ${runs} | ${(runs / rr).toFixed(2)} | ${(ns / runs).toFixed(0)} | ${(ns / rr).toFixed(0)} |`)
  }
  statsTable = `\nProgram run time during ${rr} round trips (kernel.bpf_stats_enabled; runs of other processes' sockets on the host included, e.g. sys_enter counts every syscall of the machine):\n\n| program | runs | per round trip | ns per run | ns per round trip |\n|---|---|---|---|---|\n${lines.join('\n')}\n| total | | | | **${(total / rr).toFixed(0)}** |\n`
}

const res = { stream: { off: [], on: [] }, rr: { off: [], on: [] } }
for (let i = 0; i < rounds; i++) {
  for (const on of [false, true]) {
    if (on) await attach()
    res.stream[on ? 'on' : 'off'].push(transfer('stream', streamMb))
    res.rr[on ? 'on' : 'off'].push(transfer('rr', rr))
    if (on) detach()
  }
  process.stderr.write(`round ${i}: ${JSON.stringify(res)}\n`)
}
cleanup()
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]
const kernel = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()
const sOff = med(res.stream.off)
const sOn = med(res.stream.on)
const rOff = med(res.rr.off)
const rOn = med(res.rr.on)
// a stream's 64 KiB loopback segments: ~2 packets per 64 KiB (data + ACK) is not assumed;
// the per-MB and per-round-trip figures are what the workloads cost.
console.log(`Kernel ${kernel}, ${rounds} rounds (median), loopback in one namespace with a BPF-mode poller attached (on) or not (off); CPU = user + sys of the transfer process.

| workload | off | on | overhead |
|---|---|---|---|
| stream, ${streamMb} MB in 64 KiB writes | ${(sOff * 1e3).toFixed(0)} ms (${((sOff * 1e6) / streamMb).toFixed(0)} µs/MB) | ${(sOn * 1e3).toFixed(0)} ms (${((sOn * 1e6) / streamMb).toFixed(0)} µs/MB) | ${(((sOn - sOff) / sOff) * 100).toFixed(1)}% |
| ${rr} round trips of 1 byte (4 sends/recvs, ≥ 2 packets each) | ${(rOff * 1e3).toFixed(0)} ms (${((rOff * 1e9) / rr).toFixed(0)} ns/rt) | ${(rOn * 1e3).toFixed(0)} ms (${((rOn * 1e9) / rr).toFixed(0)} ns/rt) | ${(((rOn - rOff) / rOff) * 100).toFixed(1)}% (${(((rOn - rOff) * 1e9) / rr).toFixed(0)} ns per round trip) |

All rounds: ${JSON.stringify(res)}
${statsTable}`)
