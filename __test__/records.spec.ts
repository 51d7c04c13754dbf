/**
 * Correct closed records (issue 8): a socket that never had a peer is not a closed
 * connection (unless asked for); a closed connection keeps the uid and inode the dumps
 * knew, where the kernel's destroy message says 0; an unseen one has neither. And
 * `tcpInfo`, read from the record's bytes in JS, is the native decoder's object exactly.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'

import test from 'ava'

import type { DecodedConnection } from '../src/api/types.js'
import { readArchive, snapshot, watch, type Batch, type Watcher } from '../src/index.js'
import { native } from '../src/native.js'
import { closeGracefully, connect, isClientSide, sleep, startSink, until } from './helpers/tcp.js'

/** Every closed record of the next `polls` batches. */
async function closedOver(w: Watcher, polls: number): Promise<Batch['closed']> {
  const out = []
  for (let i = 0; i < polls; i++) {
    const r = await w.next()
    if (r.done) break
    out.push(...r.value.closed)
  }
  return out
}

/** Opens and closes a listener between two polls: no peer ever, seen by no dump. */
async function bindAndClose(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as net.AddressInfo).port
  s.close()
  await once(s, 'close')
  return port
}

for (const reportUnconnected of [false, true]) {
  test.serial(`a never-connected socket closed during a watch: ${reportUnconnected ? 'reported with reportUnconnected' : 'no record by default'}`, async (t) => {
    const w = watch({ intervalMs: 300, families: ['inet'], states: 'all', reportUnconnected })
    t.teardown(() => w.close())
    await w.next()
    const port = await bindAndClose()
    const closed = (await closedOver(w, 3)).filter((c) => c.id?.srcPort === port)
    if (reportUnconnected) {
      t.is(closed.length, 1, 'the kernel sent its destroy event (so the default really drops it)')
      t.true(closed[0]?.unseen)
      t.is(closed[0]?.id?.dstPort, 0)
    } else {
      t.deepEqual(closed, [])
    }
  })
}

test.serial('a connection owned by another uid keeps that uid (and its inode) in its closed record', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const w = watch({ intervalMs: 20, families: ['inet'] })
  t.teardown(() => w.close())
  await w.next()
  // A client running as nobody (65534) that holds its connection for a while, then closes.
  const script = `const s = require('net').connect(${sink.port}, '127.0.0.1', () => { console.log(s.localPort); setTimeout(() => s.end(), 400) }); s.on('close', () => process.exit(0))`
  const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => child.kill())
  const [chunk] = (await once(child.stdout, 'data')) as [Buffer]
  const localPort = Number(chunk.toString().trim())
  const opened = await until(w, (b) => b.connections.find((c) => c.id?.srcPort === localPort && c.kind !== 'closed'))
  t.is(opened.conn.decoded?.uid, 65534)
  const inode = opened.conn.decoded?.inode
  t.true((inode ?? 0) > 0)
  const closed = await until(w, (b) => b.closed.find((c) => c.cookie === opened.conn.cookie))
  t.true(closed.conn.fromDestroyEvent)
  t.is(closed.conn.decoded?.uid, 65534, 'not the destroy message\'s 0')
  t.is(closed.conn.decoded?.inode, inode)
  const raw = closed.conn.raw
  t.is(raw?.readUInt32LE(64), 65534, 'the archived RawIDM carries the uid too')
})

test.serial('an unseen connection has no uid or inode (absent, not zero)', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const w = watch({ intervalMs: 1000, families: ['inet'] })
  t.teardown(() => w.close())
  await w.next()
  const client = await connect(sink.port)
  const ours = isClientSide(client)
  await closeGracefully(client)
  await sleep(10)
  const { conn } = await until(w, (b) => b.closed.find(ours), 4000)
  t.true(conn.unseen)
  t.false('uid' in (conn.decoded ?? {}))
  t.false('inode' in (conn.decoded ?? {}))
})

const MLAB = new URL('../crates/tcpinfo-core/tests/fixtures/mlab/', import.meta.url).pathname

test('tcpInfo read from the bytes is the native decoder\'s object key for key (M-Lab fixtures: 168/224 bytes; this kernel\'s live sockets)', async (t) => {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  await once(client, 'connect')
  t.teardown(() => client.destroy())
  const batches: Batch[] = [await snapshot()]
  for (const f of readdirSync(MLAB).filter((n) => n.endsWith('.zst'))) {
    for await (const b of readArchive(join(MLAB, f)).batches()) batches.push(b)
  }
  let compared = 0
  const lengths = new Set<number>()
  for (const b of batches) {
    const full = native().nativeDecodeRecords(b.index, b.payloads) as (DecodedConnection | null)[]
    for (const [i, c] of b.connections.entries()) {
      const want = full[i]?.tcpInfo
      const got = c.tcpInfo
      if (!isDeepStrictEqual(got, want) || Object.keys(got ?? {}).join() !== Object.keys(want ?? {}).join()) {
        t.deepEqual(got, want, `record ${i} of a batch`)
        t.deepEqual(Object.keys(got ?? {}), Object.keys(want ?? {}))
        return
      }
      t.is(c.decoded?.tcpInfo, got, 'decoded.tcpInfo is the same object')
      if (want) {
        compared++
        lengths.add(Object.keys(want).length)
      }
    }
  }
  t.log(`${compared} tcp_info objects compared, ${lengths.size} shapes (${[...lengths].join(', ')} fields)`)
  t.true(compared > 1500 && lengths.size >= 3, 'old and new kernels\' lengths were compared')
})
