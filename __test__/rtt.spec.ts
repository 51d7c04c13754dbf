/**
 * Passive RTT against the real kernel (issue 14). Two network namespaces joined by a veth,
 * with a `tc tbf` bottleneck on b's egress (this kernel has no netem: the tbf queue makes
 * RTTs of milliseconds, its limit makes losses). Clients in a download from servers in b;
 * the capture point is a's veth. Shown here:
 * - the live ring and `tcpdump -w` (µs and ns pcap) see the same samples; pcapng copies
 *   made by editcap at µs and ns resolution give the same RTTs;
 * - each connection's passive minimum RTT is within 10% + 50 µs of the kernel's
 *   `tcpi_min_rtt` of the sending socket, read with `snapshot()`; IPv4 and IPv6;
 * - truncated frames (a copy of the capture cut to 50 bytes) are counted and skipped;
 * - with a tiny tbf limit (losses, retransmissions) no sample is below the path's RTT;
 * - without CAP_NET_RAW the CLI fails with one line naming the capability.
 */
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import test, { type ExecutionContext } from 'ava'

import { flowKey, rtt, snapshot, type RttSample, type RttStats } from '../src/index.js'
import { run } from './helpers/cli.js'
import { netnsPair, sh, spawnIn, stop, type NetnsPair } from './helpers/netns.js'
import { sleep } from './helpers/tcp.js'

const TRAFFIC = new URL('./helpers/rtt-traffic.mjs', import.meta.url).pathname
const PORT = 5001
const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-rtt-'))
// RTT_KEEP=1 keeps the captures for a look with tshark.
test.after.always(() => process.env['RTT_KEEP'] ? console.error(dir) : rmSync(dir, { recursive: true, force: true }))

interface Collected {
  samples: RttSample[]
  stats: RttStats
}

async function collect(options: Parameters<typeof rtt>[0], started?: (stop: () => void) => void): Promise<Collected> {
  const capture = rtt(options)
  started?.(() => capture.stop())
  const samples: RttSample[] = []
  let stats: RttStats | undefined
  for await (const b of capture) {
    samples.push(...b.samples)
    stats = b.stats
  }
  return { samples, stats: stats! }
}

/** Starts a live capture and returns once its ring is open, with a function that ends it. */
async function live(net: NetnsPair): Promise<{ done: Promise<Collected>; end: () => void }> {
  let end = (): void => {}
  const done = collect({ interface: net.ifA, netns: net.a, batchIntervalMs: 50 }, (s) => (end = s))
  // The native capture opens its ring in the first next(), queued as a microtask.
  await new Promise((r) => setImmediate(r))
  return { done, end: () => end() }
}

function client(net: NetnsPair, host: string, n: number, bytes: number): Promise<ChildProcess> {
  return spawnIn(net.a, /^done$/, process.execPath, TRAFFIC, 'client', host, String(PORT), String(n), String(bytes))
}

/** Request/response connections, started ahead: they connect on {@link go}. */
function pinger(net: NetnsPair, host: string, n: number): Promise<ChildProcess> {
  return spawnIn(net.a, /^ready$/, process.execPath, TRAFFIC, 'ping', host, String(PORT), String(n), '30', 'wait')
}

/** Tells started pingers to connect; resolves when each printed `done`. */
async function go(pingers: ChildProcess[]): Promise<void> {
  await Promise.all(
    pingers.map((p) => {
      const done = new Promise<void>((resolve, reject) => {
        createInterface({ input: p.stdout! }).on('line', (l) => l === 'done' && resolve())
        p.once('exit', (code) => reject(new Error(`pinger exited (${code}) before done`)))
      })
      p.stdin!.write('go\n')
      return done
    }),
  )
}

async function endClient(p: ChildProcess): Promise<void> {
  p.stdin!.end()
  await new Promise((r) => p.once('exit', r))
}

/**
 * The same matches (echoing flow and echoed TSval; in the same order up to packets of two
 * CPUs that two taps may interleave differently), RTTs a median 20 µs and at most 5 ms
 * apart (each tap reads the clock when a received packet reaches it; on a loaded machine
 * that differs by tens of µs, and once in a while by 2 ms when a tap waits for a CPU).
 * A misread resolution would be 1000× off in every sample; the pcapng copies below are
 * compared exactly.
 */
function sameSamples(t: ExecutionContext, a: RttSample[], b: RttSample[], what: string): void {
  const byMatch = new Map(b.map((s) => [match(s), s.rttNs]))
  t.deepEqual(a.map(match).sort(), [...byMatch.keys()].sort(), what)
  const deltas = a.map((s) => Math.abs(s.rttNs - (byMatch.get(match(s)) ?? Infinity))).sort((x, y) => x - y)
  const median = deltas[deltas.length >> 1]!
  t.true(median <= 20_000 && deltas.at(-1)! <= 5_000_000, `${what}: median ${median} max ${deltas.at(-1)} ns`)
}

/** The matched pair of a sample: echoing flow and echoed TSval. */
const match = (s: RttSample): string => `${flowKey(s.flow)} ${s.tsecr}`
/** One line per sample, for exact comparisons. */
const line = (s: RttSample): string => `${flowKey(s.flow)} ${s.tsecr} ${s.timeNs} ${s.rttNs}`

/**
 * The kernel's view of the test connections, keyed `family:client port`: from the
 * server's sockets (in b) or the clients' (in a).
 */
async function kernelView(net: NetnsPair, ns = net.b) {
  const { connections } = await snapshot({ netns: `/var/run/netns/${ns}`, excludeLocal: false, states: ['established', 'fin-wait-1', 'fin-wait-2', 'close-wait', 'last-ack', 'closing'] })
  const out = new Map<string, { minRttUs: number; retrans: number }>()
  for (const c of connections) {
    const server = ns === net.b
    if ((server ? c.id?.srcPort : c.id?.dstPort) !== PORT || c.tcpInfo?.minRtt === undefined) continue
    // The dual-stack server's IPv4 connections are AF_INET6 sockets with v4-mapped peers.
    const peer = server ? c.id!.dstIp : c.id!.srcIp
    const v4 = !peer.includes(':') || /^::ffff:\d/i.test(peer)
    out.set(`${v4 ? 4 : 6}:${server ? c.id!.dstPort : c.id!.srcPort}`, { minRttUs: c.tcpInfo.minRtt, retrans: c.tcpInfo.totalRetrans })
  }
  return out
}

/** Waits until b's bottleneck queue holds at least `bytes` (the standing queue is there). */
async function queueFilled(net: NetnsPair, bytes: number): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const m = /backlog (\d+)b/.exec(sh('tc', '-n', net.b, '-s', 'qdisc', 'show', 'dev', net.ifB))
    if (m && Number(m[1]) >= bytes) return
    if (Date.now() > deadline) throw new Error(`the tbf queue never reached ${bytes} bytes (${m?.[0]})`)
    await sleep(20)
  }
}

/** Per server→client flow, the median sample. */
function passiveMedians(samples: RttSample[]): Map<string, number> {
  const all = new Map<string, number[]>()
  for (const s of samples) {
    if (s.flow.sport !== PORT) continue
    const k = `${s.flow.family}:${s.flow.dport}`
    all.set(k, [...(all.get(k) ?? []), s.rttNs])
  }
  return new Map([...all].map(([k, v]) => [k, v.sort((a, b) => a - b)[v.length >> 1]!]))
}

/** Per server→client flow (echoes by the server: the round trip a → b → a), the smallest sample. */
function passiveMins(samples: RttSample[]): Map<string, number> {
  const m = new Map<string, number>()
  for (const s of samples) {
    if (s.flow.sport !== PORT) continue
    const k = `${s.flow.family}:${s.flow.dport}`
    m.set(k, Math.min(m.get(k) ?? Infinity, s.rttNs))
  }
  return m
}

test.serial('live ring = tcpdump; pcap/pcapng at µs and ns agree; passive min RTT = kernel tcpi_min_rtt (IPv4 and IPv6)', async (t) => {
  const net = netnsPair('rtt1', 1, 'rate 20mbit burst 4kb limit 100kb')
  const procs: ChildProcess[] = []
  try {
    const pcapUs = join(dir, 'us.pcap')
    const pcapNs = join(dir, 'ns.pcap')
    const dumps = [
      await spawnIn(net.a, /listening on/, 'tcpdump', '-Z', 'root', '-i', net.ifA, '-s', '128', '--immediate-mode', '-w', pcapUs, 'tcp'),
      await spawnIn(net.a, /listening on/, 'tcpdump', '-Z', 'root', '-i', net.ifA, '-s', '128', '--immediate-mode', '--time-stamp-precision=nano', '-w', pcapNs, 'tcp'),
    ]
    procs.push(...dumps)
    const cap = await live(net)
    const server = await spawnIn(net.b, /^listening$/, process.execPath, TRAFFIC, 'server', '::', String(PORT))
    procs.push(server)
    // A standing queue: UDP from b at twice the bottleneck rate keeps the tbf queue full
    // (100 kB at 20 Mbit/s: 40 ms, so a sender paused by a busy machine rarely lets it
    // drain). Its 1456-byte packets leave some of the limit free, so the small TCP
    // segments still find room.
    const udp = await spawnIn(net.b, /^sending$/, process.execPath, TRAFFIC, 'udp', net.v4.a, '9', '40')
    procs.push(udp)
    // Request/response connections from a (100 bytes every 10 ms): each echo waits in the
    // queue, and a's kernel times the same round trips as the capture. The processes start
    // first and connect once the queue stands (node's start-up would starve the UDP sender
    // on a busy machine, and the handshakes would see an empty queue).
    const measured = await Promise.all([pinger(net, net.v4.b, 4), pinger(net, net.v6.b, 2)])
    procs.push(...measured)
    await queueFilled(net, 60_000)
    await go(measured)
    // The kernel's view now, while the sockets are open; the capture's samples are cut
    // here too (the FIN exchange after it is timed by the capture, not in this snapshot).
    const snapshotAt = BigInt(Date.now()) * 1_000_000n
    const kernel = await kernelView(net, net.a)
    for (const p of measured) await endClient(p)
    // Nothing flows while the captures stop one by one.
    await stop(udp)
    await stop(server)
    await sleep(300)
    for (const d of dumps) await stop(d, 'SIGINT')
    cap.end()
    const liveRun = await cap.done

    // The ring dropped nothing and every packet parsed.
    t.is(liveRun.stats.ringDrops, 0)
    t.is(liveRun.stats.truncated + liveRun.stats.malformed, 0)
    t.true(liveRun.samples.length > 300, `${liveRun.samples.length} samples`)

    // Live = tcpdump's nanosecond pcap = its microsecond pcap: the same matches in the
    // same order. Times agree to the clock reads of separate taps (a packet socket stamps
    // a received packet when the packet reaches it) and the 1 µs truncation.
    const ns = await collect({ pcap: pcapNs })
    const us = await collect({ pcap: pcapUs })
    sameSamples(t, ns.samples, liveRun.samples, 'tcpdump ns vs live')
    sameSamples(t, us.samples, ns.samples, 'tcpdump µs vs ns')
    // pcapng copies keep their resolution (if_tsresol 6 and 9) and give the very same samples.
    for (const [src, samples] of [
      [pcapNs, ns.samples],
      [pcapUs, us.samples],
    ] as const) {
      const ng = `${src}ng`
      sh('editcap', '-F', 'pcapng', src, ng)
      t.deepEqual((await collect({ pcap: ng })).samples.map(line), samples.map(line), ng)
    }

    // Truncated frames are counted and skipped: the capture followed by a copy cut to 50
    // bytes (inside the TCP header, or the IPv6 header) gives the very same samples.
    const cut = join(dir, 'cut.pcap')
    const merged = join(dir, 'merged.pcap')
    sh('editcap', '-s', '50', pcapNs, cut)
    sh('mergecap', '-F', 'nsecpcap', '-a', '-w', merged, pcapNs, cut)
    const withCut = await collect({ pcap: merged })
    t.deepEqual(withCut.samples.map(line), ns.samples.map(line), 'cut frames change no sample')
    t.is(withCut.stats.frames, 2 * ns.stats.frames)
    t.is(withCut.stats.truncated, ns.stats.frames, 'every cut frame counted as truncated')

    // Each connection: passive min within 10% + 50 µs of the kernel's tcpi_min_rtt, with
    // the handshake (the opener's kernel counts SYN → SYN-ACK; so does the matcher). The
    // pair has permanent neighbour entries: see netnsPair and design.md on why.
    const passive = passiveMins(liveRun.samples.filter((s) => s.timeNs < snapshotAt))
    const medians = passiveMedians(liveRun.samples)
    const measuredKeys = [...kernel.keys()].filter((k) => passive.has(k))
    t.log(measuredKeys.map((k) => `${k} min: kernel ${kernel.get(k)!.minRttUs} µs, passive ${(passive.get(k)! / 1000).toFixed(0)} µs, median ${(medians.get(k)! / 1000).toFixed(0)} µs, retrans ${kernel.get(k)!.retrans}`).join('; '))
    t.is(measuredKeys.filter((k) => k.startsWith('6:')).length, 2, `IPv6 flows: ${measuredKeys}`)
    t.is(measuredKeys.length, 6, `flows matched: ${measuredKeys}`)
    for (const k of measuredKeys) {
      const kernelNs = kernel.get(k)!.minRttUs * 1000
      const p = passive.get(k)!
      t.true(Math.abs(p - kernelNs) <= 0.1 * kernelNs + 50_000, `${k}: passive min ${p} ns, kernel tcpi_min_rtt ${kernelNs} ns`)
      t.true(medians.get(k)! >= 2_000_000, `${k}: the queue makes RTTs of milliseconds (median ${medians.get(k)} ns)`)
    }

    // The CLI reads the same file: one JSON line per sample, summaries with --summary.
    const cli = await run(['rtt', '--pcap', pcapNs, '--json'])
    t.is(cli.code, 0, cli.stderr)
    t.is(cli.stdout.trim().split('\n').length, ns.samples.length)
    const sum = await run(['rtt', '--pcap', pcapNs, '--json', '--summary', '3600'])
    const flows = sum.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; count: number })
    t.true(flows.every((f) => f.type === 'summary') && flows.reduce((a, f) => a + f.count, 0) === ns.samples.length)
  } finally {
    for (const p of procs) await stop(p)
    net.destroy()
  }
})

test.serial('retransmissions (tiny tbf limit) never give a sample below the path RTT', async (t) => {
  const net = netnsPair('rtt2', 2, 'rate 50mbit burst 4kb limit 6kb')
  const procs: ChildProcess[] = []
  try {
    const cap = await live(net)
    procs.push(await spawnIn(net.b, /^listening$/, process.execPath, TRAFFIC, 'server', '::', String(PORT)))
    const clients = await Promise.all([client(net, net.v4.b, 3, 1_000_000), client(net, net.v6.b, 1, 1_000_000)])
    const kernel = await kernelView(net)
    for (const p of clients) await endClient(p)
    cap.end()
    const { samples, stats } = await cap.done
    const retrans = [...kernel.values()].reduce((a, k) => a + k.retrans, 0)
    t.true(retrans > 0, 'the small limit made the senders retransmit')
    t.true(stats.samples > 50)
    let checked = 0
    for (const s of samples) {
      if (s.flow.sport !== PORT) continue
      const k = kernel.get(`${s.flow.family}:${s.flow.dport}`)
      if (!k) continue
      checked++
      t.true(s.rttNs >= 0.9 * k.minRttUs * 1000 - 50_000, `${flowKey(s.flow)}: sample ${s.rttNs} ns below path RTT ${k.minRttUs} µs`)
    }
    t.true(checked > 20)
    t.log(`${retrans} retransmits, ${checked} samples checked`)
  } finally {
    for (const p of procs) await stop(p)
    net.destroy()
  }
})

test('without CAP_NET_RAW: one clear error naming the capability', (t) => {
  const main = new URL('../dist/cli/main.js', import.meta.url).pathname
  const r = spawnSync('setpriv', ['--inh-caps=-all', '--bounding-set=-net_raw', '--', process.execPath, main, 'rtt', '--interface', 'lo'], { encoding: 'utf8' })
  t.is(r.status, 1)
  t.regex(r.stderr, /CAP_NET_RAW.*\[ERR_PERMISSION\]/)
  t.is(r.stderr.trim().split('\n').length, 1)
})

test('bad files and flags', async (t) => {
  const notCapture = await run(['rtt', '--pcap', new URL(import.meta.url).pathname])
  t.is(notCapture.code, 1)
  t.regex(notCapture.stderr, /ERR_CAPTURE_FILE/)
  const missing = await run(['rtt', '--pcap', join(dir, 'nope.pcap')])
  t.regex(missing.stderr, /ERR_IO/)
  t.is((await run(['rtt'])).code, 2)
  t.is((await run(['rtt', '--pcap', 'x', '--interface', 'lo'])).code, 2)
  const noIf = await run(['rtt', '--interface', 'no-such-if0'])
  t.is(noIf.code, 2)
  t.regex(noIf.stderr, /no-such-if0/)
})
