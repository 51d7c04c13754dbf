/**
 * `tcpinfo collect --passive-rtt IF` against the real kernel (issue 14). Namespaces a and
 * b joined by a veth with a `tc tbf` queue on b's egress (kept standing by UDP from b);
 * request/response connections from a to b over IPv4 and IPv6; the collector watches a
 * and captures on a's veth. Shown here:
 * - each closed connection gets a side-file line whose passive minimum RTT is within
 *   10% + 50 µs of the kernel's final `tcpi_min_rtt` of the same socket (RTTs of ms);
 * - `/metrics` has the passive RTT histogram by remote /24 and /48 (never per flow), the
 *   kernel-ratio histogram, and a ring that dropped nothing; with room for one prefix the
 *   other's samples go to `prefix="other"`, counted as overflow;
 * - the archive's lines are untouched (the side file is beside them, not in them);
 * - without CAP_NET_RAW the collector refuses to start, naming the capability.
 */
import { spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import test from 'ava'

import { readRawConfig, resolveCollectorConfig } from '../src/config/collector-config.js'
import { archiveFiles, CLI, get, sample, startCollector, stopCollector } from './helpers/collector.js'
import { netnsPair, sh, spawnIn, stop } from './helpers/netns.js'
import { sleep } from './helpers/tcp.js'

const TRAFFIC = new URL('./helpers/rtt-traffic.mjs', import.meta.url).pathname
const PORT = 5001
const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-passive-rtt-'))
test.after.always(() => rmSync(dir, { recursive: true, force: true }))

interface SideLine {
  Timestamp: string
  UUID: string
  ID: { SPort: number; DPort: number; SrcIP: string; DstIP: string }
  KernelMinRTT: number | null
  PassiveMinRTT: number | null
  PassiveMaxRTT: number | null
  PassiveSamples: number
}

function sideLines(out: string): SideLine[] {
  const root = join(out, 'passive-rtt')
  if (!existsSync(root)) return []
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name === 'passive-rtt.jsonl')
    .flatMap((e) => readFileSync(join(e.parentPath, e.name), 'utf8').trim().split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as SideLine)
}

test.serial('collect --passive-rtt: per-connection passive min = kernel tcpi_min_rtt; histograms by /24 and /48', async (t) => {
  const net = netnsPair('prtt', 3, 'rate 20mbit burst 4kb limit 100kb')
  const procs: ChildProcess[] = []
  const out = join(dir, 'data')
  try {
    procs.push(await spawnIn(net.b, /^listening$/, process.execPath, TRAFFIC, 'server', '::', String(PORT)))
    const udp = await spawnIn(net.b, /^sending$/, process.execPath, TRAFFIC, 'udp', net.v4.a, '9', '40')
    procs.push(udp)
    const pingers = await Promise.all([net.v4.b, net.v6.b].map((host) => spawnIn(net.a, /^ready$/, process.execPath, TRAFFIC, 'ping', host, String(PORT), '2', '30', 'wait')))
    procs.push(...pingers)
    const col = await startCollector(['--output', out, '--netns', `/var/run/netns/${net.a}`, '--passive-rtt', net.ifA, '--prom', '127.0.0.1:0', '--flush-interval', '100ms'])
    t.regex(col.stderr(), new RegExp(`measuring RTTs passively on ${net.ifA}`))
    // A second collector on the same traffic with room for one prefix: the other overflows.
    // It anonymizes: its side file must not carry the peers' addresses.
    const small = await startCollector(['--output', join(dir, 'small'), '--netns', `/var/run/netns/${net.a}`, '--passive-rtt', net.ifA, '--passive-rtt-max-prefixes', '1', '--prom', '127.0.0.1:0', '--anonymize-ip', 'netblock'])
    try {
      // The queue stands before the connections open (see rtt.spec.ts).
      const deadline = Date.now() + 10_000
      while (Number(/backlog (\d+)b/.exec(sh('tc', '-n', net.b, '-s', 'qdisc', 'show', 'dev', net.ifB))?.[1] ?? 0) < 60_000) {
        if (Date.now() > deadline) throw new Error('the tbf queue never filled')
        await sleep(20)
      }
      await Promise.all(
        pingers.map((p) => {
          const done = new Promise<void>((resolve) => createInterface({ input: p.stdout! }).on('line', (l) => l === 'done' && resolve()))
          p.stdin!.write('go\n')
          return done
        }),
      )
      // Close the connections (the queue still standing): the close records carry the
      // kernel's final tcp_info.
      for (const p of pingers) p.stdin!.end()
      let lines: SideLine[] = []
      for (const until = Date.now() + 10_000; Date.now() < until; await sleep(100)) {
        lines = sideLines(out).filter((l) => l.ID.DPort === PORT)
        if (lines.length >= 4) break
      }
      await stop(udp)
      t.is(lines.length, 4, `side-file lines of the test connections: ${JSON.stringify(lines)}`)
      t.log(lines.map((l) => `${l.ID.SrcIP}:${l.ID.SPort} kernel ${l.KernelMinRTT} µs, passive ${l.PassiveMinRTT} µs (${l.PassiveSamples} samples, max ${l.PassiveMaxRTT} µs)`).join('; '))
      t.is(lines.filter((l) => l.ID.DstIP.includes(':')).length, 2, 'two IPv6 connections')
      for (const l of lines) {
        t.regex(l.UUID, /_[0-9A-F]{16}$/)
        t.true(l.PassiveSamples >= 30, `${l.ID.SPort}: ${l.PassiveSamples} samples`)
        const k = l.KernelMinRTT!
        t.true(Math.abs(l.PassiveMinRTT! - k) <= 0.1 * k + 50, `${l.ID.SrcIP}:${l.ID.SPort}: passive ${l.PassiveMinRTT} µs vs kernel ${k} µs`)
        t.true(l.PassiveMaxRTT! >= 2000, `${l.ID.SPort}: the queue makes RTTs of milliseconds (max ${l.PassiveMaxRTT} µs)`)
      }

      const m = (await get(`http://${col.prom}/metrics`)).body
      const v4 = sample(m, 'tcpinfo_passive_rtt_seconds_count{prefix="10.77.3.0/24"}') ?? 0
      const v6 = sample(m, 'tcpinfo_passive_rtt_seconds_count{prefix="fd77:3::/48"}') ?? 0
      t.true(v4 >= 60 && v6 >= 60, `histogram counts: /24 ${v4}, /48 ${v6}`)
      const mean = (sample(m, 'tcpinfo_passive_rtt_seconds_sum{prefix="10.77.3.0/24"}') ?? 0) / v4
      t.true(mean >= 0.002, `mean RTT to 10.77.3.0/24: ${mean} s`)
      t.is(sample(m, 'tcpinfo_passive_rtt_seconds_bucket{prefix="10.77.3.0/24",le="+Inf"}'), v4)
      // Only prefixes, never flows: the label set is the two remote networks.
      const prefixes = new Set([...m.matchAll(/tcpinfo_passive_rtt_seconds_count\{prefix="([^"]+)"\}/g)].map((x) => x[1]))
      t.deepEqual([...prefixes].sort(), ['10.77.3.0/24', 'fd77:3::/48'])
      t.true((sample(m, 'tcpinfo_passive_rtt_local_samples_total') ?? 0) > 0, "a's own echoes are counted, not binned")
      t.true((sample(m, 'tcpinfo_passive_rtt_kernel_ratio_count') ?? 0) >= 4)
      t.is(sample(m, 'tcpinfo_passive_rtt_ring_drops_total'), 0)
      t.true((sample(m, 'tcpinfo_passive_rtt_connections_total{result="matched"}') ?? 0) >= 4)
      // Reported connections are forgotten: their table slots serve new connections.
      t.is(sample(m, 'tcpinfo_passive_rtt_flows'), 0)
      // The hand-made histograms parse; no lint problem names a passive RTT metric.
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: m, encoding: 'utf8' })
      t.true(lint.status === 0 || lint.status === 3, `promtool check metrics: ${lint.stdout}${lint.stderr}`)
      t.false(/passive_rtt/.test(`${lint.stdout}${lint.stderr}`), `${lint.stdout}${lint.stderr}`)
      const m1 = (await get(`http://${small.prom}/metrics`)).body
      const rows = [...m1.matchAll(/tcpinfo_passive_rtt_seconds_count\{prefix="([^"]+)"\} (\d+)/g)].map((x) => [x[1], Number(x[2])] as const)
      t.is(rows.length, 2, `one prefix and other: ${JSON.stringify(rows)}`)
      t.true(['10.77.3.0/24', 'fd77:3::/48'].includes(rows.find(([p]) => p !== 'other')?.[0] ?? ''))
      const other = rows.find(([p]) => p === 'other')?.[1] ?? 0
      t.true(other >= 60, `samples under prefix="other": ${other}`)
      t.is(sample(m1, 'tcpinfo_passive_rtt_prefix_overflow_total'), other)
    } finally {
      t.is(await stopCollector(col.child), 0, col.stderr())
      t.is(await stopCollector(small.child), 0, small.stderr())
    }
    // --anonymize-ip netblock reaches the side file too: v4 /24, v6 /48, matches still made.
    const hidden = sideLines(join(dir, 'small')).filter((l) => l.ID.DPort === PORT)
    t.is(hidden.length, 4, JSON.stringify(hidden))
    for (const l of hidden) {
      t.true(l.PassiveSamples >= 30, `anonymized line still matched: ${JSON.stringify(l)}`)
      for (const ip of [l.ID.SrcIP, l.ID.DstIP]) t.regex(ip, /^10\.77\.\d+\.0$|^fd77:\d+::$/, `anonymized ${ip}`)
    }
    // The archive is as without the flag: its files hold ArchivalRecord lines only.
    t.true(archiveFiles(out).length >= 4)
    t.false(archiveFiles(out).some((f) => f.slice(out.length).includes('passive-rtt')))
  } finally {
    for (const p of procs) await stop(p)
    net.destroy()
  }
})

test('collect --passive-rtt without CAP_NET_RAW: refuses to start, naming the capability', (t) => {
  const r = spawnSync('setpriv', ['--inh-caps=-all', '--bounding-set=-net_raw', '--', process.execPath, CLI, 'collect', '--output', join(dir, 'nocap'), '--passive-rtt', 'lo', '--prom', '', '--reps', '1'], { encoding: 'utf8', timeout: 20_000 })
  t.not(r.status, 0)
  t.regex(r.stderr, /CAP_NET_RAW/)
})

test('--passive-rtt options: flag, environment, config file; bad values name the option', (t) => {
  const cfg = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveCollectorConfig(readRawConfig(argv, env)).config
  const d = cfg([])
  t.deepEqual([d.passiveRtt, d.passiveRttMaxPrefixes, d.passiveRttV4Prefix, d.passiveRttV6Prefix], ['', 256, 24, 48])
  const f = cfg(['--passive-rtt', 'eth0', '--passive-rtt-max-prefixes', '16', '--passive-rtt-v4-prefix', '16', '--passive-rtt-v6-prefix=64'])
  t.deepEqual([f.passiveRtt, f.passiveRttMaxPrefixes, f.passiveRttV4Prefix, f.passiveRttV6Prefix], ['eth0', 16, 16, 64])
  const e = cfg([], { PASSIVE_RTT: 'any', PASSIVE_RTT_MAX_PREFIXES: '8' })
  t.deepEqual([e.passiveRtt, e.passiveRttMaxPrefixes], ['any', 8])
  const file = join(dir, 'c.yaml')
  writeFileSync(file, 'passive-rtt: veth0\npassive-rtt-v6-prefix: 56\n')
  const y = cfg(['--config', file])
  t.deepEqual([y.passiveRtt, y.passiveRttV6Prefix], ['veth0', 56])
  for (const [flag, bad] of [['--passive-rtt', 'a b'], ['--passive-rtt', 'x'.repeat(16)], ['--passive-rtt-max-prefixes', '0'], ['--passive-rtt-max-prefixes', '5000'], ['--passive-rtt-v4-prefix', '33'], ['--passive-rtt-v6-prefix', '8']] as const) {
    const err = t.throws(() => cfg([flag, bad]), undefined, `${flag} ${bad}`)
    t.true(err!.message.includes(flag), err!.message)
  }
})
