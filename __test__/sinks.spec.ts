/** The sink interface's parts (issue 10): the bounded queue refuses past either bound; the null sink counts. */
import test from 'ava'

import type { Batch } from '../src/api/batch.js'
import { BoundedQueue, NullSink } from '../src/sinks/sink.js'

test('BoundedQueue is bounded in items and in bytes, FIFO', (t) => {
  const q = new BoundedQueue<number>(3, 100)
  t.true(q.push(1, 40))
  t.true(q.push(2, 40))
  t.false(q.push(3, 40), 'bytes bound')
  t.true(q.push(3, 20))
  t.false(q.push(4, 0), 'items bound')
  t.is(q.length, 3)
  t.is(q.bytes, 100)
  t.is(q.shift(), 1)
  t.is(q.bytes, 60)
  t.true(q.push(5, 40))
  t.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()], [2, 3, 5, undefined])
  t.is(q.bytes, 0)
  const big = new BoundedQueue<string>(10, 10)
  t.true(big.push('one item larger than the bound fits an empty queue', 50))
  t.false(big.push('but nothing after it', 1))
  t.throws(() => new BoundedQueue(0, 10), { instanceOf: RangeError })
  // Long runs stay compact.
  const long = new BoundedQueue<number>(10, 1e9)
  for (let i = 0; i < 10_000; i++) {
    long.push(i, 1)
    t.is(long.shift(), i)
  }
  t.is(long.length, 0)
})

test('NullSink accepts everything, never blocks, counts what it was offered', async (t) => {
  const s = new NullSink()
  const batch = {} as Batch
  t.true(s.offer(batch))
  t.true(s.offer(batch))
  t.deepEqual(s.counters(), { offered: 2, droppedBatches: 0, droppedRecords: 0, queuedItems: 0, queuedBytes: 0 })
  t.is(s.unhealthy(), undefined)
  await s.close()
})
