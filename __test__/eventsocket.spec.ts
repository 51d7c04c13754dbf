/**
 * The event socket (issue 10) end to end: a real collector process on a network namespace
 * with real connections. Open and close events for each connection, in order, with the
 * archive's UUIDs and M-Lab's ID encoding; a late client gets the open connections first;
 * a client that never reads is dropped (counted) without slowing the polls; a client that
 * disconnects mid-write disturbs no one; M-Lab's own example client reads our stream; the
 * TypeScript client reconnects. Plus the protocol's encodings and the socket file rules.
 */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'

import { events, type FlowEvent } from '../src/eventsocket/client.js'
import { goIp, goTime, sockIdJson, sockIdOf } from '../src/eventsocket/protocol.js'
import { EventSocketServer } from '../src/eventsocket/server.js'
import { archiveUuids, get, HOLD, sample, startCollector, stopCollector } from './helpers/collector.js'
import { CLIENT, netnsPair, nodeIn, SERVER, type NetnsPair } from './helpers/netns-pair.js'

const PORT = 45_310
const MLAB_CLIENT = process.env.TCPINFO_MLAB_EVENT_CLIENT

let subnet = 201
async function setup(t: ExecutionContext): Promise<{ pair: NetnsPair; out: string; sock: string }> {
  const tag = `oes${process.pid % 10_000}${subnet}`
  const pair = netnsPair(tag, subnet++)
  t.teardown(() => pair.destroy())
  const server = nodeIn(pair.b, SERVER(pair.addrB, PORT, 0))
  t.teardown(() => server.child.kill())
  await server.lines.next()
  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-events-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  return { pair, out, sock: join(out, 'events.sock') }
}

/** Collects events from `events()` until aborted. */
function collect(path: string): { got: FlowEvent[]; stop: () => void; until: (pred: (got: FlowEvent[]) => boolean, ms?: number) => Promise<void> } {
  const ac = new AbortController()
  const got: FlowEvent[] = []
  void (async () => {
    for await (const e of events(path, { signal: ac.signal, minBackoffMs: 20 })) got.push(e)
  })()
  return {
    got,
    stop: () => ac.abort(),
    until: async (pred, ms = 15_000) => {
      const end = Date.now() + ms
      while (!pred(got)) {
        if (Date.now() > end) throw new Error(`timed out with ${got.length} events`)
        await new Promise((r) => setTimeout(r, 20))
      }
    },
  }
}

async function runClients(pair: NetnsPair, sizes: number[]): Promise<number[]> {
  const c = nodeIn(pair.a, CLIENT(pair.addrB, PORT, sizes, 0, 20))
  const ports: number[] = []
  for await (const line of c.lines) {
    const o = JSON.parse(line) as { done?: boolean; error?: string; port: number }
    if (o.done) break
    if (o.error) throw new Error(o.error)
    ports.push(o.port)
  }
  return ports
}

function uuidCookie(uuid: string): bigint {
  return BigInt.asIntN(64, BigInt(`0x${uuid.slice(uuid.lastIndexOf('_') + 1)}`))
}

test('IDs are encoded as M-Lab encodes inetdiag.SockID', (t) => {
  const b = (bytes: number[]): Uint8Array => Uint8Array.from([...bytes, ...Array<number>(16 - bytes.length).fill(0)])
  t.is(goIp(b([10, 1, 0, 2]), 0), '10.1.0.2')
  t.is(goIp(b([]), 0), '0.0.0.0')
  t.is(goIp(b([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]), 0), '192.0.2.1')
  t.is(goIp(b([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), 0), '::1')
  t.is(goIp(b([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]), 0), '2001:db8::1:0:0:1')
  t.is(goIp(b([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]), 0), 'fe80::5')
  t.is(goIp(b([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1]), 0), '2001:db8:1:0:1:1:1:1', 'a single zero group is not shortened')
  // M-Lab's ip(): bytes 4..15 all zero means IPv4, even for an AF_INET6 address.
  t.is(goIp(b([0x20, 0x01, 0x0d, 0xb8]), 0), '32.1.13.184')
  const raw = new Uint8Array(72)
  const v = new DataView(raw.buffer)
  v.setUint16(4, 443, false)
  v.setUint16(6, 51000, false)
  raw.set([10, 0, 0, 1], 8)
  raw.set([10, 0, 0, 2], 24)
  v.setUint32(40, 3, true)
  const id = sockIdOf(raw, 0xffff_ffff_ffff_fffen)
  t.is(sockIdJson(id), '{"SPort":443,"DPort":51000,"SrcIP":"10.0.0.1","DstIP":"10.0.0.2","Interface":50331648,"Cookie":-2}')
  t.is(sockIdJson(sockIdOf(raw, 0x8000_0000_0000_0001n)), '{"SPort":443,"DPort":51000,"SrcIP":"10.0.0.1","DstIP":"10.0.0.2","Interface":50331648,"Cookie":-9223372036854775807}')
  t.is(goTime(1_700_000_000_123_456_789n), '2023-11-14T22:13:20.123456789Z')
  t.is(goTime(1_700_000_000_120_000_000n), '2023-11-14T22:13:20.12Z')
  t.is(goTime(1_700_000_000_000_000_000n), '2023-11-14T22:13:20Z')
})

test('a stale socket file is replaced, the mode applied; anything else is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-es-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 's.sock')
  // A socket file left by a killed process.
  const r = spawnSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path)})`])
  t.is(r.status, 0, String(r.stderr))
  t.true(statSync(path).isSocket())
  const s = new EventSocketServer({ path, mode: 0o640 })
  await s.listen()
  t.is(statSync(path).mode & 0o777, 0o640)
  const c = connect(path)
  await once(c, 'connect')
  c.destroy()
  await s.close()
  const s2 = new EventSocketServer({ path })
  await s2.listen()
  t.is(statSync(path).mode & 0o777, 0o660, 'default mode 0660')
  await s2.close()
  const file = join(dir, 'regular')
  writeFileSync(file, 'data')
  await t.throwsAsync(new EventSocketServer({ path: file }).listen(), { message: /exists and is not a socket/ })
})

test('the TypeScript client reconnects with backoff and parses M-Lab lines', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-es-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'mlab.sock')
  const c = collect(path) // nothing listening yet
  await new Promise((r) => setTimeout(r, 150))
  const line = (e: number, u: string): string =>
    `{"Event":${e},"Timestamp":"2026-11-29T12:00:00.123456789Z","UUID":"${u}","ID":${e === 0 ? '{"SPort":1,"DPort":2,"SrcIP":"10.0.0.1","DstIP":"10.0.0.2","Interface":0,"Cookie":5}' : 'null'}}\n`
  for (const round of [1, 2]) {
    const server = createServer((s: Socket) => s.end(line(0, `h_${round}`) + line(1, `h_${round}`)))
    await new Promise<void>((r) => server.listen(path, r))
    await c.until((g) => g.filter((e) => e.uuid === `h_${round}`).length === 2)
    await new Promise<void>((r) => server.close(() => r()))
  }
  c.stop()
  t.deepEqual(
    c.got.map((e) => [e.type, e.uuid, e.id?.SPort]),
    [['open', 'h_1', 1], ['close', 'h_1', undefined], ['open', 'h_2', 1], ['close', 'h_2', undefined]],
  )
  t.is(c.got[0]?.time.toISOString(), '2026-11-29T12:00:00.123Z')
})

test.serial('open and close events for every connection, in order, with the archive UUIDs; a late client gets the open ones first; a stalled client is dropped without slowing polls; a client leaving mid-write disturbs no one', async (t) => {
  const { pair, out, sock } = await setup(t)
  const data = join(out, 'data')
  const col = await startCollector(['--output', data, '--netns', pair.pathA, '--eventsocket', sock, '--eventsocket-queue-bytes', '4096', '--interval', '20', '--flush-interval', '100ms', '--prom', '127.0.0.1:0'])
  t.teardown(() => col.child.kill('SIGKILL'))
  const early = collect(sock)
  t.teardown(() => early.stop())
  await early.until(() => true)
  // A client that leaves after its first 20 kB.
  const leaver = connect(sock)
  let leaverGot = 0
  leaver.on('data', (d: Buffer) => {
    leaverGot += d.length
    if (leaverGot > 20_000) leaver.destroy()
  })
  leaver.on('error', () => undefined)
  await new Promise((r) => setTimeout(r, 200))

  const seqPorts = await runClients(pair, [1000, 2000, 3000])
  const held = nodeIn(pair.a, HOLD(pair.addrB, PORT, 1500))
  t.teardown(() => held.child.kill())
  const first = JSON.parse((await held.lines.next()).value as string) as { open?: number[]; error?: string }
  t.truthy(first.open, JSON.stringify(first))
  const heldPorts = new Set(first.open)
  await early.until((g) => g.filter((e) => e.type === 'open' && heldPorts.has(e.id?.SPort ?? -1)).length === heldPorts.size)

  // The late client: every held connection's open comes before anything else.
  const late = collect(sock)
  t.teardown(() => late.stop())
  await late.until((g) => g.length >= heldPorts.size)
  const initial = late.got.slice(0, heldPorts.size)
  t.true(initial.every((e) => e.type === 'open'), 'the initial state is open events only')
  const initialPorts = new Set(initial.map((e) => e.id?.SPort))
  const extra = initial.filter((e) => !heldPorts.has(e.id?.SPort ?? -1))
  const missing = [...heldPorts].filter((p) => !initialPorts.has(p))
  t.deepEqual([extra.map((e) => e.line), missing], [[], []], `the late client got every open connection first (${initialPorts.size} ports)`)

  // Poll pace for one second without, then with, a client that never reads (its queue full of the initial state).
  const pace = async (): Promise<{ polls: number; ms: number }> => {
    const a = (await get(`http://${col.prom}/metrics`)).body
    const t0 = Date.now()
    await new Promise((r) => setTimeout(r, 1000))
    const b = (await get(`http://${col.prom}/metrics`)).body
    const n = (x: string): number => (sample(b, x) ?? 0) - (sample(a, x) ?? 0)
    return { polls: n('tcpinfo_polls_total') + n('tcpinfo_polls_skipped_total'), ms: Date.now() - t0 }
  }
  const before = await pace()
  const stalled = connect(sock)
  stalled.pause()
  await once(stalled, 'connect')
  await new Promise((r) => setTimeout(r, 100))
  const during = await pace()
  t.log(`polls per second without a stalled client: ${Math.round((before.polls * 1000) / before.ms)}, with one: ${Math.round((during.polls * 1000) / during.ms)} (20 ms interval)`)
  t.true(during.polls / during.ms >= (0.5 * before.polls) / before.ms, 'a stalled client does not slow the polls')

  held.child.stdin?.write('close\n')
  t.truthy(JSON.parse((await held.lines.next()).value as string).closed)
  await early.until((g) => g.filter((e) => e.type === 'close').length >= heldPorts.size + seqPorts.length)
  await late.until((g) => g.filter((e) => e.type === 'close').length >= heldPorts.size)
  await new Promise((r) => setTimeout(r, 150))
  const m1 = (await get(`http://${col.prom}/metrics`)).body

  // The stalled client was dropped (its queue overflowed with the closes) and counted.
  t.true((sample(m1, 'tcpinfo_eventsocket_clients_dropped_total') ?? 0) >= 1, 'stalled client dropped and counted')
  t.true((sample(m1, 'tcpinfo_sink_dropped_records_total{sink="eventsocket"}') ?? 0) > 0, 'its lost events counted')
  stalled.resume()
  await once(stalled, 'close')
  t.true(leaver.destroyed && leaverGot > 20_000)

  t.is(await stopCollector(col.child), 0, col.stderr())
  early.stop()
  late.stop()

  // Every connection: one open, then one close, under the archive's UUID; IDs as M-Lab encodes them.
  const byUuid = new Map<string, FlowEvent[]>()
  for (const e of early.got) byUuid.set(e.uuid, [...(byUuid.get(e.uuid) ?? []), e])
  const ours = [...byUuid.entries()].filter(([, es]) => es[0]?.id?.DPort === PORT)
  t.is(ours.length, seqPorts.length + heldPorts.size)
  for (const [uuid, es] of ours) {
    t.deepEqual(es.map((e) => e.type), ['open', 'close'], uuid)
    const id = es[0]?.id
    t.is(id?.SrcIP, pair.addrA)
    t.is(id?.DstIP, pair.addrB)
    t.is(BigInt(id?.Cookie ?? 0), uuidCookie(uuid))
    t.true(es[0]!.time <= es[1]!.time)
  }
  t.deepEqual(new Set(ours.map(([, es]) => es[0]?.id?.SPort)), new Set([...seqPorts, ...heldPorts]))
  const files = archiveUuids(data)
  const onlyEvents = [...byUuid.keys()].filter((u) => !files.has(u))
  const onlyFiles = [...files].filter((u) => !byUuid.has(u))
  t.deepEqual([onlyEvents, onlyFiles], [[], []], `event UUIDs are the archive file names (${byUuid.size} vs ${files.size}): ${JSON.stringify(onlyEvents.slice(0, 5).map((u) => byUuid.get(u)?.map((e) => e.line)))}`)
  t.true(/dropped a client that stopped reading/.test(col.stderr()))
  t.is(col.stderr().match(/dropped a client that stopped reading/g)?.length, 1, 'logged once')
})

;(MLAB_CLIENT ? test.serial : test.serial.skip)(
  `M-Lab's example-eventsocket-client reads our stream${MLAB_CLIENT ? '' : ' (skipped: set TCPINFO_MLAB_EVENT_CLIENT to the binary built from github.com/m-lab/tcp-info/cmd/example-eventsocket-client)'}`,
  async (t) => {
    const { pair, out, sock } = await setup(t)
    const data = join(out, 'data')
    const col = await startCollector(['--output', data, '--netns', pair.pathA, '--eventsocket', sock, '--interval', '20', '--prom', ''])
    t.teardown(() => col.child.kill('SIGKILL'))
    const mlab = spawn(MLAB_CLIENT as string, [`-tcpinfo.eventsocket=${sock}`], { stdio: ['ignore', 'ignore', 'pipe'] })
    t.teardown(() => mlab.kill('SIGKILL'))
    let log = ''
    mlab.stderr?.on('data', (d: Buffer) => (log += d.toString()))
    await new Promise((r) => setTimeout(r, 300))
    const ports = await runClients(pair, [5000, 6000, 7000])
    t.is(ports.length, 3)
    await new Promise((r) => setTimeout(r, 500))
    t.is(mlab.exitCode, null, `M-Lab's client is still running (a line it could not parse is fatal): ${log}`)
    mlab.kill('SIGTERM')
    t.is(await stopCollector(col.child), 0, col.stderr())
    const uuids = [...archiveUuids(data)]
    t.is(uuids.length, 3)
    for (const u of uuids) {
      t.regex(log, new RegExp(`open +(sent|skipped) ${u} `), `open of ${u} handled by M-Lab's client`)
      t.regex(log, new RegExp(`close ${u} `), `close of ${u} handled by M-Lab's client`)
    }
    t.log(`M-Lab's client logged ${log.split('\n').filter(Boolean).length} lines, e.g. ${log.split('\n').find((l) => l.includes('open'))}`)
  },
)
