/**
 * Outputs under abuse (issue 15): 100 event-socket clients at once — a third reading, a
 * third never reading, a third disconnecting mid-write — then more than the client cap.
 * Polling keeps its pace, the collector's memory stays bounded, the readers get every
 * open and close, the stalled clients are dropped and counted, clients beyond the cap are
 * refused and counted, and the caps are exposed as `tcpinfo_limit{resource}`.
 * (One stalled client, a scrape flood and a dead Kafka broker are in eventsocket.spec.ts,
 * metrics.spec.ts and kafka.spec.ts.)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import test from 'ava'

import { HOLD, sample } from './helpers/collector.js'
import { scrapeIn, startCollectorAs, stopAs } from './helpers/faults.js'
import { netnsPair, nodeIn, SERVER } from './helpers/netns-pair.js'

const PORT = 45_950

function rssMb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
}

async function connected(path: string): Promise<Socket> {
  const s = createConnection(path)
  s.on('error', () => {})
  await new Promise((r, j) => s.once('connect', r).once('error', j))
  return s
}

test.serial('100 event-socket clients at once (reading, never reading, leaving mid-write), then beyond the cap: polls keep their pace, memory bounded, drops and refusals counted', async (t) => {
  t.timeout(120_000)
  const pair = netnsPair(`faults${process.pid % 1000}o`, 197)
  t.teardown(() => pair.destroy())
  const server = nodeIn(pair.b, SERVER(pair.addrB, PORT, 2000))
  t.teardown(() => server.child.kill())
  await server.lines.next()
  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-outputs-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const sock = join(out, 'ev.sock')
  const c = await startCollectorAs([], ['--output', join(out, 'data'), '--netns', pair.pathA, '--prom', '127.0.0.1:0', '--eventsocket', sock, '--eventsocket-queue-bytes', '4096', '--interval', '20ms'])
  t.teardown(() => c.child.kill('SIGKILL'))
  const pid = c.child.pid as number
  const scrape = (): string => scrapeIn(undefined, c.prom as string)
  const pace = async (ms: number): Promise<number> => {
    const p0 = sample(scrape(), 'tcpinfo_polls_total') ?? 0
    await new Promise((r) => setTimeout(r, ms))
    return ((sample(scrape(), 'tcpinfo_polls_total') ?? 0) - p0) / (ms / 1000)
  }
  const before = await pace(1500)
  const rss0 = rssMb(pid)

  const readers: { sock: Socket; lines: string[] }[] = []
  const stalled: Socket[] = []
  const leavers: Socket[] = []
  const all = await Promise.all(Array.from({ length: 100 }, () => connected(sock)))
  all.forEach((s, i) => {
    if (i % 3 === 0) {
      const r = { sock: s, lines: [] as string[] }
      createInterface({ input: s }).on('line', (l) => r.lines.push(l))
      readers.push(r)
    } else if (i % 3 === 1) {
      s.pause()
      stalled.push(s)
    } else leavers.push(s)
  })
  t.teardown(() => all.forEach((s) => s.destroy()))
  // Traffic: 1000 connections opened at once, then closed at once (~340 kB of events,
  // more than a paused client's socket buffer and its 64 KiB bound), while the leavers go
  // away mid-stream.
  const hold = nodeIn(pair.a, HOLD(pair.addrB, PORT, 1000))
  t.teardown(() => hold.child.kill())
  const opened = JSON.parse((await hold.lines.next()).value as string) as { open: number[] }
  for (const s of leavers) s.destroy()
  const during = await pace(1500)
  hold.child.stdin?.write('close\n')
  t.deepEqual(JSON.parse((await hold.lines.next()).value as string), { closed: true })
  await new Promise((r) => setTimeout(r, 1000))
  const m = scrape()
  const rss1 = rssMb(pid)
  t.log(`polls/s: ${before.toFixed(0)} before, ${during.toFixed(0)} with 100 clients; RSS ${rss0.toFixed(0)} → ${rss1.toFixed(0)} MiB; clients ${sample(m, 'tcpinfo_eventsocket_clients')}, dropped ${sample(m, 'tcpinfo_eventsocket_clients_dropped_total')}`)
  t.true(during >= 0.5 * before, 'polling kept its pace')
  t.true(rss1 - rss0 < 64, 'memory bounded: 100 clients cost less than 64 MiB')
  t.true((sample(m, 'tcpinfo_eventsocket_clients') ?? 0) >= readers.length, 'the readers are connected')
  t.true((sample(m, 'tcpinfo_eventsocket_clients') ?? 0) <= readers.length + stalled.length, 'the leavers are gone')
  // Every reader got an open and a close for each traffic connection.
  const ports = new Set(opened.open)
  for (const r of readers) {
    const evs = r.lines.map((l) => JSON.parse(l) as { Event: number; UUID: string; ID: { SPort: number; DPort: number } | null })
    const opens = new Map(evs.filter((e) => e.Event === 0 && e.ID?.DPort === PORT && ports.has(e.ID.SPort)).map((e) => [e.UUID, e]))
    const closes = new Set(evs.filter((e) => e.Event === 1 && opens.has(e.UUID)).map((e) => e.UUID))
    t.is(opens.size, ports.size, 'an open event per connection')
    t.is(closes.size, ports.size, 'a close event per connection')
  }
  // The stalled ones overflow their bound.
  t.true((sample(m, 'tcpinfo_eventsocket_clients_dropped_total') ?? 0) >= 1, 'stalled clients dropped and counted')
  t.is(sample(m, 'tcpinfo_limit{resource="eventsocket_clients"}'), 1024)
  t.is(sample(m, 'tcpinfo_limit{resource="eventsocket_client_bytes"}'), 4096)
  t.is(sample(m, 'tcpinfo_limit{resource="open_files"}'), 16384)

  // Beyond the cap of 1024 clients: the rest are refused and counted.
  const many = await Promise.all(Array.from({ length: 1030 }, () => connected(sock).catch(() => undefined)))
  t.teardown(() => many.forEach((s) => s?.destroy()))
  await new Promise((r) => setTimeout(r, 500))
  const m2 = scrape()
  t.true((sample(m2, 'tcpinfo_eventsocket_clients') ?? 0) <= 1024, 'never more than the cap')
  t.true((sample(m2, 'tcpinfo_eventsocket_clients_refused_total') ?? 0) >= 1, 'refusals counted')
  t.is((await stopAs(c.child)).code, 0, c.stderr())
})
