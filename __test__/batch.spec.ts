/**
 * A batch's buffers: connections are zero-copy views (real `Buffer`s) over the three
 * regions the native poller hands over; the lines lie back to back as the batch's JSONL;
 * buffers V8 has collected go back to the poller's pool and are reused, while a line a
 * consumer still holds keeps its bytes.
 */
import { Buffer } from 'node:buffer'

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
