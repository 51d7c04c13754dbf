/**
 * The archive as a sink. It is the one lossless sink: its queue (in the native writer,
 * bounded by polls and bytes) is never overrun by dropping records; when it is full,
 * `offer()` returns `false` and the collector awaits `lossless.waitForRoom()` before
 * pulling the next batch, so the poller skips polls, folding their changes into the next
 * one and keeping every close (a closed connection's final record is never dropped).
 */
import type { Batch } from '../api/batch.js'
import type { ArchiveWriter } from '../archive/writer.js'
import type { Sink, SinkCounters } from './sink.js'

/** Waiting for room longer than this makes the archive unhealthy, ms. */
const STUCK_MS = 10_000

export class ArchiveSink implements Sink {
  readonly name = 'archive'
  readonly writer: ArchiveWriter
  readonly lossless: { waitForRoom(timeoutMs: number): Promise<boolean> }
  #offered = 0
  #fullSince = 0

  constructor(writer: ArchiveWriter) {
    this.writer = writer
    this.lossless = {
      waitForRoom: async (timeoutMs) => {
        const ok = await writer.waitForRoom(timeoutMs)
        if (ok) this.#fullSince = 0
        return ok
      },
    }
  }

  offer(batch: Batch): boolean {
    this.#offered++
    const room = this.writer.write(batch)
    if (!room && this.#fullSince === 0) this.#fullSince = Date.now()
    return room
  }

  counters(): SinkCounters {
    const s = this.writer.stats()
    return { offered: this.#offered, droppedBatches: 0, droppedRecords: s.recordsDropped, queuedItems: s.queueDepth, queuedBytes: s.queuedBytes }
  }

  unhealthy(): string | undefined {
    if (this.#fullSince > 0 && Date.now() - this.#fullSince > STUCK_MS) return `archive writer full for ${Math.round((Date.now() - this.#fullSince) / 1000)} s`
    return undefined
  }

  async close(deadlineMs: number): Promise<void> {
    await this.writer.close(deadlineMs)
  }
}
