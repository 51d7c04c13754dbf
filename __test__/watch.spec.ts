/**
 * watch() against the live kernel: a real loopback connection is reported opened, then
 * changed with the bytes it sent, then closed with its final counters; a connection that
 * lives less than one poll still arrives with its final tcp_info; the iterator frees its
 * netlink sockets when the loop breaks or the signal aborts.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

import test from 'ava'

import { snapshot, watch, type Connection } from '../src/index.js'
import { closeGracefully, connect, isClientSide, send, sleep, startSink, until } from './helpers/tcp.js'

const N = 200_000

test('a connection is reported opened, changed with bytesAcked >= N, then closed with final counters', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const w = watch({ intervalMs: 10, families: ['inet'] })
  t.teardown(() => w.close())
  await w.next()
  const client = await connect(sink.port)
  const ours = isClientSide(client)

  const opened = await until(w, (b) => b.opened.find(ours))
  t.is(opened.conn.kind, 'opened')
  t.is(opened.conn.state, 1)
  t.regex(opened.conn.uuid, /_[0-9A-F]{16}$/)
  t.is(opened.conn.id?.dstPort, sink.port)

  await send(client, N)
  const changed = await until(w, (b) => b.changed.find((c) => ours(c) && (c.tcpInfo?.bytesAcked ?? 0n) >= BigInt(N)))
  t.is(changed.conn.cookie, opened.conn.cookie)
  t.true(changed.batch.seq > opened.batch.seq)

  await closeGracefully(client)
  const closed = await until(w, (b) => b.closed.find((c) => c.cookie === opened.conn.cookie))
  t.true(closed.conn.fromDestroyEvent, 'final record comes from the destroy event')
  t.true((closed.conn.tcpInfo?.bytesAcked ?? 0n) >= BigInt(N + 1), 'final bytes_acked counts the data and the FIN')
  const line = JSON.parse(closed.conn.archivalRecord ?? '{}') as { RawIDM: string; Attributes: (string | null)[] }
  t.is(Buffer.from(line.RawIDM, 'base64').length, 72)
  t.truthy(line.Attributes[2], 'the archived close carries INET_DIAG_INFO')
})

test('a connection opened and closed between two polls arrives with its final tcp_info', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const w = watch({ intervalMs: 1000, families: ['inet'] })
  t.teardown(() => w.close())
  await w.next()
  const client = await connect(sink.port)
  const ours = isClientSide(client)
  await send(client, N)
  await closeGracefully(client)
  const { conn } = await until(w, (b) => b.closed.find(ours), 4000)
  t.true(conn.unseen, 'never seen by a dump')
  t.true(conn.fromDestroyEvent)
  t.true((conn.tcpInfo?.bytesAcked ?? 0n) >= BigInt(N))
  t.true((conn.tcpInfo?.segsOut ?? 0) > 0)
})

function diagSocketFds(): number {
  // Netlink sockets of protocol 4 (NETLINK_SOCK_DIAG) in this netns, by inode.
  const inodes = new Set(
    readFileSync('/proc/self/net/netlink', 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[1] === '4')
      .map((f) => f[f.length - 1]),
  )
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))
      return m !== null && inodes.has(m[1] as string)
    } catch {
      return false
    }
  }).length
}

test.serial('break and abort close the netlink sockets', async (t) => {
  const baseline = diagSocketFds()
  for await (const b of watch({ intervalMs: 5 })) {
    t.true(b.seq >= 1)
    t.is(diagSocketFds(), baseline + 2, 'one dump socket and one destroy-event socket while running')
    break
  }
  t.is(diagSocketFds(), baseline)

  const ac = new AbortController()
  const w = watch({ intervalMs: 5, signal: ac.signal })
  await w.next()
  t.is(diagSocketFds(), baseline + 2)
  ac.abort()
  await t.throwsAsync(w.next(), { name: 'AbortError' })
  t.is(diagSocketFds(), baseline)
})

test('concurrent next() calls are serialised and each gets its own poll', async (t) => {
  const w = watch({ intervalMs: 5 })
  t.teardown(() => w.close())
  const results = await Promise.all([w.next(), w.next(), w.next()])
  const seqs = results.map((r) => (r.done ? -1 : r.value.seq))
  t.deepEqual(seqs, [1, 2, 3])
})

test('unchanged idle connections are not reported again', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const client = await connect(sink.port)
  t.teardown(() => client.destroy())
  await send(client, 1000)
  await sleep(300)
  const w = watch({ intervalMs: 20, families: ['inet'] })
  t.teardown(() => w.close())
  const ours = isClientSide(client)
  const first = await w.next()
  t.truthy(!first.done && first.value.opened.find(ours))
  let reported: Connection | undefined
  for (let i = 0; i < 10; i++) {
    const r = await w.next()
    if (!r.done) reported ??= r.value.connections.find(ours)
  }
  t.is(reported, undefined, 'an idle connection (only last_* times moving) is not a change')
})

test('IPv6 and IPv4 connections are both seen, in the default single dump and per family', async (t) => {
  const v6 = await startSink('::1')
  const v4 = await startSink('127.0.0.1')
  t.teardown(() => {
    v6.server.close()
    v4.server.close()
  })
  const c6 = await connect(v6.port, '::1')
  const c4 = await connect(v4.port, '127.0.0.1')
  t.teardown(() => {
    c6.destroy()
    c4.destroy()
  })
  const both = await snapshot()
  t.truthy(both.connections.find((c) => c.family === 10 && isClientSide(c6)(c)), 'IPv6 client side in the both-families dump')
  t.truthy(both.connections.find((c) => c.family === 2 && isClientSide(c4)(c)), 'IPv4 client side in the both-families dump')
  const only6 = await snapshot({ families: ['inet6'] })
  t.true(only6.connections.every((c) => c.family === 10))
  t.truthy(only6.connections.find(isClientSide(c6)))
  const only4 = await snapshot({ families: ['inet'] })
  t.true(only4.connections.every((c) => c.family === 2))
  t.truthy(only4.connections.find(isClientSide(c4)))
})
