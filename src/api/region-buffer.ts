/**
 * Zero-copy `Buffer` views over a batch's regions (index, payloads, lines).
 *
 * At 10k records per poll these views are most of the JS cost of `watch()`, so they are
 * made the cheapest way that still yields ordinary Buffers (same prototype, so strict deep
 * equality holds): Node's own Buffer class, `Buffer[Symbol.species]` (`FastBuffer`),
 * constructed directly over the region's `ArrayBuffer`, looked up once. In Node 20 that is
 * 34–49 ns per view, against ~53 ns for `Buffer.from(arrayBuffer, offset, length)` (which
 * first asks C++ whether its argument is an ArrayBuffer) and 130–155 ns for `buf.subarray()`
 * or anything that reads `.buffer` of the external Buffer each time (`bench/views.mjs`).
 */
import { Buffer } from 'node:buffer'

type BufferConstructor = new (memory: ArrayBuffer, offset: number, length: number) => Buffer

/** `FastBuffer`, if this runtime exposes it as the species of Buffer; else `Buffer.from`. */
const FastBuffer: BufferConstructor | undefined = (() => {
  const species = (Buffer as unknown as Record<symbol, unknown>)[Symbol.species]
  return typeof species === 'function' && species.prototype === Buffer.prototype ? (species as BufferConstructor) : undefined
})()

/** A region of a batch, its memory looked up once. */
export interface Region {
  readonly memory: ArrayBuffer
  readonly offset: number
  readonly length: number
}

export function regionOf(buf: Buffer): Region {
  return { memory: buf.buffer as ArrayBuffer, offset: buf.byteOffset, length: buf.length }
}

/** `len` bytes at `start` of `region` as a `Buffer`, without a copy. */
export function view(region: Region, start: number, len: number): Buffer {
  if (start + len > region.length) {
    // Only a corrupt index could ask for this; say so rather than show another record's bytes.
    throw new RangeError(`record bytes ${start}+${len} outside a ${region.length}-byte region`)
  }
  return FastBuffer ? new FastBuffer(region.memory, region.offset + start, len) : Buffer.from(region.memory, region.offset + start, len)
}
