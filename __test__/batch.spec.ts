/**
 * A batch's buffers: connections are zero-copy views (real `Buffer`s) over the three
 * regions the native poller hands over; the lines lie back to back as the batch's JSONL;
 * buffers V8 has collected go back to the poller's pool and are reused, while a line a
 * consumer still holds keeps its bytes.
 */
import { Buffer } from 'node:buffer'
import { readFileSync } from 'node:fs'

import test from 'ava'

import { snapshot, watch } from '../src/index.js'
import { connect, send, startSink } from './helpers/tcp.js'

test('connections are Buffer views of the batch; the lines are its JSONL, back to back', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const client = await connect(sink.port)
  t.teardown(() => client.destroy())
  const batch = await snapshot({ families: ['inet'] })
  const conns = batch.connections
  t.true(conns.length >= 2, 'both ends of our connection at least')
  t.is(batch.size, conns.length)
  t.is(batch.opened.length, conns.length, 'a snapshot reports everything as opened')
  const lines = conns.map((c) => c.archivalLine)
  for (const [i, c] of conns.entries()) {
    const line = lines[i]
    const raw = c.raw
    if (!line || !raw) return t.fail(`connection ${i} has no record`)
    t.true(Buffer.isBuffer(line) && Buffer.isBuffer(raw))
    t.is(Object.getPrototypeOf(line), Buffer.prototype, 'an ordinary Buffer: strict deep equality holds')
    t.is(line.at(-1), 0x0a)
    const rec = JSON.parse(line.toString('utf8')) as { RawIDM: string }
    t.deepEqual(Buffer.from(rec.RawIDM, 'base64'), raw.subarray(0, 72), 'RawIDM is the payload\'s inet_diag_msg')
    t.is(c.archivalRecord, line.toString('utf8', 0, line.length - 1))
  }
  t.deepEqual(Buffer.concat(lines.map((l) => l ?? Buffer.alloc(0))), batch.archivalLines())
  t.true(batch.byteLength >= batch.archivalLines().length + 32 * batch.size)
})

test.serial('collected buffers are reused by later polls; a held line keeps its bytes', async (t) => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) return t.fail('run with --expose-gc (package.json ava.nodeArguments)')
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const client = await connect(sink.port)
  t.teardown(() => client.destroy())
  const w = watch({ intervalMs: 10, families: ['inet'] })
  t.teardown(() => w.close())

  const first = await w.next()
  if (first.done) return t.fail('no first batch')
  const held = first.value.connections.slice(0, 3).map((c) => c.archivalLine)
  const copies = held.map((l) => Buffer.from(l ?? Buffer.alloc(0)))
  t.true(held.length > 0)

  let reused = 0
  for (let i = 0; i < 60 && reused === 0; i++) {
    await send(client, 1000) // something changes every poll: every batch has records
    gc()
    const r = await w.next()
    if (r.done) break
    reused += r.value.stats.reusedBuffers
  }
  t.true(reused > 0, 'the Buffer finalizer gave the memory back and a poll reused it')
  for (let i = 0; i < 10; i++) {
    await send(client, 1000)
    gc()
    await w.next()
  }
  held.forEach((l, i) => t.deepEqual(l, copies[i], `held line ${i} unchanged after reuse`))
})

/** Resident set of this process, bytes. */
function rss(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024
}

test('release() gives a batch memory back at once, not at the next GC, and the batch reads no more', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  // ~1,500 connections: a snapshot of ~2 MB, allocations large enough to be unmapped when freed.
  const clients = await Promise.all(Array.from({ length: 1500 }, () => connect(sink.port)))
  t.teardown(() => clients.forEach((c) => c.destroy()))
  const nextTurn = async () => {
    for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r))
  }

  const kept = await snapshot({ families: ['inet'] })
  const before = rss()
  await nextTurn()
  t.true(before - rss() < kept.byteLength / 4, 'without release() the memory stays until V8 collects the batch')

  const batch = await snapshot({ families: ['inet'] })
  t.true(batch.byteLength > 1_500_000, `a large batch (${batch.byteLength} B)`)
  const line = batch.connections[0]?.archivalLine
  t.true(line !== undefined && line.length > 0)
  const held = rss()
  batch.release()
  batch.release() // idempotent
  await nextTurn()
  const freed = held - rss()
  t.true(freed > batch.byteLength / 2, `release() freed ${freed} B of the batch's ${batch.byteLength}`)
  t.true(batch.released)
  t.is(batch.index.byteLength + batch.payloads.byteLength + batch.lines.byteLength, 0, 'its regions are detached')
  t.is(line?.length, 0, 'views taken before release() read as empty, never as freed memory')
  t.is(t.throws(() => batch.connections)?.code, 'ERR_CLOSED')
  t.true(kept.connections.length > 0, 'other batches are untouched')
})
