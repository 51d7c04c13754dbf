/**
 * A batch of archived records: the same three regions as a poll's batch (so each record is
 * the same {@link Connection} type as `watch()` yields), plus each record's `Timestamp` and
 * source (file and header metadata). Layout: docs/internals/archive/design.md.
 */
import { Batch, Connection, type RecordMetadata } from '../api/batch.js'
import type { Buffer } from 'node:buffer'

import type { NativeArchiveBatch } from '../native.js'

/** Bytes of one index entry; bytes 20..24 hold the record's segment (source) number. */
const INDEX_ENTRY_LEN = 32
const SEGMENT_OFFSET = 20
/** Go's zero time (no timestamp), stored as the smallest i64. */
const NO_TIME = -(2n ** 63n)

/** Counters of a read, in the order of `NativeArchiveBatch.stats`. */
export const ARCHIVE_STATS_FIELDS = ['lines', 'headers', 'records', 'errors', 'skipped', 'bytesIn', 'bytesText', 'sourcesDone'] as const

/** Counters of a read (sums over batches). */
export type ArchiveStats = Record<(typeof ARCHIVE_STATS_FIELDS)[number], number>

/** Records of one or more archive files, viewed without copying. */
/** An archived batch comes from no poll: its poll counters are all zero. */
const NO_POLL_STATS = {
  dumpNanos: 0, recvCalls: 0, bytes: 0, messages: 0, malformed: 0, destroyEvents: 0, destroyOverruns: 0,
  lateDestroyEvents: 0, droppedCloses: 0, skippedPolls: 0, tracked: 0, trackerBytes: 0, reusedBuffers: 0,
  namespaces: 0, cpuNanos: 0, effectiveIntervalNanos: 0, longPolls: 0,
  flowOpens: 0, flowCloses: 0, bytesSent: 0, bytesReceived: 0, countersBackwards: 0,
}

export class ArchiveBatch extends Batch {
  /** One i64 per record: unix ns of its `Timestamp`. */
  readonly times: BigInt64Array
  /** @internal The times region as the native side wrote it. */
  readonly timeBytes: Buffer
  /** Counters of this batch. */
  readonly readStats: ArchiveStats
  readonly #segments: RecordMetadata[]
  readonly #view: DataView

  /** @internal */
  constructor(b: NativeArchiveBatch) {
    super(
      { seq: 0, timestampNs: 0n, socketsSeen: 0, opened: 0, changed: 0, closed: 0, complete: true, part: 0, more: false, warnings: [], stats: NO_POLL_STATS, namespaces: [], portStats: [], index: b.index, payloads: b.payloads, lines: b.lines },
      '',
    )
    const t = b.times
    this.timeBytes = t
    // The native Vec<u8> is not 8-aligned for a BigInt64Array view in general: copy when needed.
    this.times = t.byteOffset % 8 === 0 ? new BigInt64Array(t.buffer, t.byteOffset, t.length / 8) : new BigInt64Array(new Uint8Array(t).buffer)
    this.readStats = Object.fromEntries(ARCHIVE_STATS_FIELDS.map((k, i) => [k, b.stats[i] ?? 0])) as ArchiveStats
    this.#segments = b.segments.map((s) => ({
      source: s.source,
      ...(s.uuid !== undefined && s.uuid !== null ? { uuid: s.uuid } : {}),
      ...(s.sequence !== undefined && s.sequence !== null ? { sequence: s.sequence } : {}),
      ...(s.startTimeNs !== undefined && s.startTimeNs !== null ? { startTimeNs: s.startTimeNs } : {}),
    }))
    this.#view = new DataView(b.index.buffer, b.index.byteOffset, b.index.byteLength)
  }

  /** The archived records, in file order. */
  get records(): readonly Connection[] {
    return this.connections
  }

  /**
   * @internal A new {@link Connection} for record `i`, not kept by the batch (unlike
   * {@link connections}): `for await` over a reader makes one per record, and it dies young.
   */
  connectionAt(i: number): Connection {
    return new Connection(this, i, this.#view)
  }

  /** @internal */
  override recordUuid(i: number, cookie: bigint): string {
    const m = this.recordMetadata(i)
    if (m?.uuid) return m.uuid
    // No header line: name it after the file, as M-Lab names files after the UUID.
    const stem = (m?.source ?? '').split('/').pop()?.replace(/(\.\d{5})?\.jsonl(\.zst)?$|\.zst$/, '') ?? ''
    return `${stem}_${cookie.toString(16).toUpperCase().padStart(16, '0')}`
  }

  /** @internal */
  override recordTimestampNs(i: number): bigint {
    const t = this.times[i] ?? NO_TIME
    return t === NO_TIME ? -62135596800000000000n : t
  }

  /** @internal */
  override recordMetadata(i: number): RecordMetadata | undefined {
    return this.#segments[this.#view.getUint32(i * INDEX_ENTRY_LEN + SEGMENT_OFFSET, true)]
  }
}
