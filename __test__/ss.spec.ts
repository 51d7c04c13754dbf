/**
 * Decoded values equal what `ss -tinmeo` (iproute2) prints for the same idle sockets,
 * matched by socket cookie (`sk:` in ss's output).
 */
import { execFileSync } from 'node:child_process'

import test from 'ava'

import { snapshot, type DecodedConnection } from '../src/index.js'
import { connect, send, sleep, startSink } from './helpers/tcp.js'

interface SsSocket {
  cookie: bigint
  fields: Map<string, string>
}

/** Parses `ss -tinmeoH` output: a socket line, then tab-indented detail lines. */
function parseSs(text: string): SsSocket[] {
  const out: SsSocket[] = []
  let cur: SsSocket | undefined
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    if (!/^\s/.test(line)) {
      const sk = /\bsk:([0-9a-f]+)/.exec(line)
      cur = { cookie: BigInt(`0x${sk?.[1] ?? '0'}`), fields: new Map() }
      out.push(cur)
    }
    for (const m of line.matchAll(/([a-z_]+):(\([^)]*\)|\S+)/g)) cur?.fields.set(m[1] as string, m[2] as string)
  }
  return out
}

/** The values we compare, rendered the way ss renders them. */
function asSs(d: DecodedConnection): Record<string, string> {
  const ti = d.tcpInfo!
  const sk = d.skMemInfo!
  const g = (v: number): string => String(Number(v.toPrecision(6)))
  const out: Record<string, string> = {
    rto: g(ti.rto / 1000),
    rtt: `${g(ti.rtt / 1000)}/${g(ti.rttvar / 1000)}`,
    mss: String(ti.sndMss),
    cwnd: String(ti.sndCwnd),
    wscale: `${ti.sndWscale},${ti.rcvWscale}`,
    segs_out: String(ti.segsOut),
    segs_in: String(ti.segsIn),
    skmem: `(r${sk.rmemAlloc},rb${sk.rcvbuf},t${sk.wmemAlloc},tb${sk.sndbuf},f${sk.fwdAlloc},w${sk.wmemQueued},o${sk.optmem},bl${sk.backlog},d${sk.drops})`,
    ino: String(d.inode),
  }
  if (ti.bytesAcked) out['bytes_acked'] = String(ti.bytesAcked)
  if (ti.bytesReceived) out['bytes_received'] = String(ti.bytesReceived)
  if (ti.bytesSent) out['bytes_sent'] = String(ti.bytesSent)
  return out
}

test('decoded tcp_info and skmem equal ss -tinmeo for idle sockets', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const clients = await Promise.all([1, 2, 3].map(() => connect(sink.port)))
  t.teardown(() => clients.forEach((c) => c.destroy()))
  await Promise.all(clients.map((c, i) => send(c, 10_000 * (i + 1))))
  await sleep(500) // let ACKs and delayed ACKs settle: the sockets must be idle

  const filter = `( sport = :${sink.port} or dport = :${sink.port} )`
  for (let attempt = 0; ; attempt++) {
    const before = await snapshot({ families: ['inet'] })
    const ss = parseSs(execFileSync('ss', ['-tinmeoH', 'state', 'established', filter], { encoding: 'utf8' }))
    const after = await snapshot({ families: ['inet'] })
    const ours = before.connections.filter((c) => c.id?.srcPort === sink.port || c.id?.dstPort === sink.port)
    const stable = ours.every((c) => {
      const again = after.connections.find((a) => a.cookie === c.cookie)
      return again !== undefined && JSON.stringify(asSs(again.decoded!)) === JSON.stringify(asSs(c.decoded!))
    })
    if (!stable && attempt < 5) {
      await sleep(200)
      continue
    }
    t.is(ours.length, 7, 'listener + 3 client sides + 3 server sides')
    t.is(ss.length, 6, 'ss lists the 6 established sides')
    let compared = 0
    for (const c of ours.filter((c) => c.state === 1)) {
      const s = ss.find((x) => x.cookie === c.cookie)
      t.truthy(s, `ss shows cookie ${c.cookie.toString(16)}`)
      for (const [k, v] of Object.entries(asSs(c.decoded!))) {
        t.is(s!.fields.get(k), v, `${k} of cookie ${c.cookie.toString(16)}`)
        compared++
      }
      const bbr = c.decoded!.bbrInfo
      if (bbr && s!.fields.has('bbr')) {
        t.true(s!.fields.get('bbr')!.includes(`mrtt:${Number((bbr.minRtt / 1000).toPrecision(6))}`))
      }
    }
    t.true(compared >= 6 * 10)
    break
  }
})
