/**
 * The collector's outputs behind one small interface. Each poll's batch is offered to
 * every sink; `offer()` never blocks and never throws: a sink that cannot keep up loses
 * its own data, counted, and nothing else. A sink that queues work keeps a
 * {@link BoundedQueue} bounded in items and in bytes (a queued batch pins native memory).
 * See docs/ARCHITECTURE.md, "Outputs as sinks".
 */
import type { Batch } from '../api/batch.js'

/** Counters every sink reports (read at scrape time). */
export interface SinkCounters {
  /** Batches offered. */
  offered: number
  /** Batches the sink dropped whole (queue full or sink failed). */
  droppedBatches: number
  /** Records lost by the sink (its share of the dropped batches, or records it refused). */
  droppedRecords: number
  /** Items waiting in the sink's queue now. */
  queuedItems: number
  /** Bytes waiting in the sink's queue now. */
  queuedBytes: number
}

/** One output of the collector. */
export interface Sink {
  /** Stable name, used as the `sink` label of the drop metrics. */
  readonly name: string
  /**
   * Hands over one poll. Never blocks, never throws. Returns `false` only for a
   * lossless sink ({@link lossless}) that wants the caller to wait for room before the
   * next batch; lossy sinks always return `true` and drop (counted) when full.
   */
  offer(batch: Batch): boolean
  /** When set, the collector waits on it after `offer()` returned `false` (the archive). */
  readonly lossless?: { waitForRoom(timeoutMs: number): Promise<boolean> }
  /** The sink's counters. */
  counters(): SinkCounters
  /** `undefined` when healthy, else why not (e.g. stuck for N s). */
  unhealthy(): string | undefined
  /** Finishes what is queued (within `deadlineMs`) and releases resources. Idempotent. */
  close(deadlineMs: number): Promise<void>
}

/** A sink that accepts everything and does nothing (an output that is switched off). */
export class NullSink implements Sink {
  readonly name: string
  #offered = 0
  constructor(name = 'null') {
    this.name = name
  }
  offer(_batch: Batch): boolean {
    this.#offered++
    return true
  }
  counters(): SinkCounters {
    return { offered: this.#offered, droppedBatches: 0, droppedRecords: 0, queuedItems: 0, queuedBytes: 0 }
  }
  unhealthy(): string | undefined {
    return undefined
  }
  async close(): Promise<void> {}
}

/**
 * A FIFO bounded in items and bytes. `push()` refuses (returns `false`) instead of
 * growing past either bound; the caller counts the drop.
 */
export class BoundedQueue<T> {
  readonly maxItems: number
  readonly maxBytes: number
  #items: { item: T; bytes: number }[] = []
  #head = 0
  #bytes = 0

  constructor(maxItems: number, maxBytes: number) {
    if (!(Number.isInteger(maxItems) && maxItems > 0 && maxBytes > 0)) throw new RangeError(`queue bounds must be positive, got ${maxItems} items, ${maxBytes} bytes`)
    this.maxItems = maxItems
    this.maxBytes = maxBytes
  }
  get length(): number {
    return this.#items.length - this.#head
  }
  get bytes(): number {
    return this.#bytes
  }
  /** Appends unless that would exceed a bound (an item larger than `maxBytes` fits only into an empty queue). */
  push(item: T, bytes: number): boolean {
    if (this.length >= this.maxItems) return false
    if (this.length > 0 && this.#bytes + bytes > this.maxBytes) return false
    this.#items.push({ item, bytes })
    this.#bytes += bytes
    return true
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const e = this.#items[this.#head++] as { item: T; bytes: number }
    this.#bytes -= e.bytes
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return e.item
  }
  clear(): void {
    this.#items = []
    this.#head = 0
    this.#bytes = 0
  }
}
