/**
 * One poll as seen from JS: a view over the single `Buffer` the native poller hands over.
 * Records are framed (docs/internals/poll/batch-format.md); typed objects are decoded
 * lazily, with one native call for the whole batch, only if a consumer asks.
 */
import { callNative, native, NATIVE_STATS_FIELDS, type NativeBatch } from '../native.js'
import type { DecodedConnection, SocketId, TcpInfo } from './types.js'

const RECORD_HEADER_LEN = 24
const FLAG_HAS_RECORD = 1
const FLAG_FROM_DESTROY_EVENT = 2
const FLAG_UNSEEN = 4
const KINDS = ['opened', 'changed', 'closed'] as const

/** Why a connection is in a batch. */
export type ChangeKind = (typeof KINDS)[number]

/** Counters of one poll. */
export type PollStats = Record<(typeof NATIVE_STATS_FIELDS)[number], number>

/** A soft error of one poll: the poll still returned all it could. */
export interface PollWarning {
  code: string
  message: string
}

/** One connection reported by a poll. Fields are read from the batch buffer on access. */
export class Connection {
  readonly #batch: Batch
  readonly #index: number
  /** Offset of this record's 24-byte header in the batch buffer. */
  readonly #off: number
  /** Little-endian reads of the header; plain fields, not private getters (V8 runs those in its runtime). */
  readonly #view: DataView

  /** @internal */
  constructor(batch: Batch, index: number, off: number, view: DataView) {
    this.#batch = batch
    this.#index = index
    this.#off = off
    this.#view = view
  }

  /** Why it is reported. */
  get kind(): ChangeKind {
    return KINDS[this.#view.getUint8(this.#off)] ?? 'changed'
  }
  /** Address family: 2 or 10. */
  get family(): number {
    return this.#view.getUint8(this.#off + 2)
  }
  /** TCP state (0 if unknown: a close found by the sweep). */
  get state(): number {
    return this.#view.getUint8(this.#off + 3)
  }
  /** Kernel socket cookie. */
  get cookie(): bigint {
    return this.#view.getBigUint64(this.#off + 16, true)
  }
  /** M-Lab UUID: `<prefix>_<cookie as %016X>`. */
  get uuid(): string {
    return `${this.#batch.uuidPrefix}_${this.cookie.toString(16).toUpperCase().padStart(16, '0')}`
  }
  /** Closed, and reported by the kernel's destroy event with the final counters. */
  get fromDestroyEvent(): boolean {
    return (this.#view.getUint8(this.#off + 1) & FLAG_FROM_DESTROY_EVENT) !== 0
  }
  /** Closed before any poll saw it (it lived less than one interval). */
  get unseen(): boolean {
    return (this.#view.getUint8(this.#off + 1) & FLAG_UNSEEN) !== 0
  }
  /** The netlink payload (`inet_diag_msg` + attributes), or `null` for a close found by the sweep. */
  get raw(): Buffer | null {
    const view = this.#view
    const off = this.#off
    if (!(view.getUint8(off + 1) & FLAG_HAS_RECORD)) return null
    return slice(view, off + RECORD_HEADER_LEN, view.getUint32(off + 4, true))
  }
  /** The `ArchivalRecord` JSON line including `\n`, or `null` like {@link raw}. */
  get archivalLine(): Buffer | null {
    const view = this.#view
    const off = this.#off
    if (!(view.getUint8(off + 1) & FLAG_HAS_RECORD)) return null
    return slice(view, off + RECORD_HEADER_LEN + view.getUint32(off + 4, true), view.getUint32(off + 8, true))
  }
  /** Everything decoded (lazy; the first access decodes the whole batch in one native call). */
  get decoded(): DecodedConnection | undefined {
    return this.#batch.decodeAll()[this.#index] ?? undefined
  }
  /** Socket addresses and ports; `undefined` for a close found by the sweep. */
  get id(): SocketId | undefined {
    return this.decoded?.id
  }
  /** Decoded `tcp_info`; `undefined` when the kernel sent none. */
  get tcpInfo(): TcpInfo | undefined {
    return this.decoded?.tcpInfo
  }
  /** The `ArchivalRecord` JSON text without the trailing newline. */
  get archivalRecord(): string | null {
    const line = this.archivalLine
    return line ? line.toString('utf8', 0, line.length - 1) : null
  }

  /** Plain-object view for `console.log` and `JSON.stringify`. */
  toJSON(): Record<string, unknown> {
    return { kind: this.kind, uuid: this.uuid, cookie: this.cookie.toString(), family: this.family, state: this.state }
  }
}

/**
 * A `Buffer` over `len` bytes at `start` of the view's memory, without a copy.
 * `Buffer.from(arrayBuffer, offset, length)` costs a third of `buffer.subarray()` in Node 20.
 */
function slice(view: DataView, start: number, len: number): Buffer {
  return Buffer.from(view.buffer, view.byteOffset + start, len)
}

/** Everything one poll reported. */
export class Batch {
  /** Poll sequence number, from 1. */
  readonly seq: number
  /** Start of the poll (ms resolution). */
  readonly timestamp: Date
  /** Start of the poll, unix ns. */
  readonly timestampNs: bigint
  /** Sockets seen in the dumps that passed the filters. */
  readonly socketsSeen: number
  /** Every family was dumped completely; when false, absence proves nothing and no close is inferred. */
  readonly complete: boolean
  readonly warnings: readonly PollWarning[]
  readonly stats: PollStats
  /** The framed records as received from the native side (docs/internals/poll/batch-format.md). */
  readonly records: Buffer
  /** Number of reported connections (opened + changed + closed). */
  readonly size: number
  /** @internal UUID prefix of this watch. */
  readonly uuidPrefix: string
  #connections: readonly Connection[] | undefined
  #decoded: (DecodedConnection | null)[] | undefined

  /** @internal */
  constructor(b: NativeBatch, uuidPrefix: string) {
    this.seq = b.seq
    this.timestampNs = b.timestampNs
    this.timestamp = new Date(Number(b.timestampNs / 1_000_000n))
    this.socketsSeen = b.socketsSeen
    this.complete = b.complete
    this.warnings = b.warnings
    this.stats = Object.fromEntries(NATIVE_STATS_FIELDS.map((k, i) => [k, b.stats[i] ?? 0])) as PollStats
    this.records = b.records
    this.size = b.opened + b.changed + b.closed
    this.uuidPrefix = uuidPrefix
  }

  /** All reported connections, in report order; framed on first access (no copy). */
  get connections(): readonly Connection[] {
    this.#connections ??= frame(this, this.records, this.size)
    return this.#connections
  }

  /** Connections seen for the first time. */
  get opened(): Connection[] {
    return this.connections.filter((c) => c.kind === 'opened')
  }
  /** Connections whose state or counters changed. */
  get changed(): Connection[] {
    return this.connections.filter((c) => c.kind === 'changed')
  }
  /** Connections that closed. */
  get closed(): Connection[] {
    return this.connections.filter((c) => c.kind === 'closed')
  }

  /** All `ArchivalRecord` lines of this batch as one JSONL buffer (a copy). */
  archivalLines(): Buffer {
    return Buffer.concat(this.connections.flatMap((c) => c.archivalLine ?? []))
  }

  /** @internal Decodes every record once, in one native call. */
  decodeAll(): (DecodedConnection | null)[] {
    this.#decoded ??= callNative(() => native().nativeDecodeRecords(this.records)) as (DecodedConnection | null)[]
    return this.#decoded
  }
}

function frame(batch: Batch, buf: Buffer, expected: number): Connection[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const out: Connection[] = new Array<Connection>(expected)
  let n = 0
  let off = 0
  while (off + RECORD_HEADER_LEN <= buf.length) {
    const next = off + RECORD_HEADER_LEN + view.getUint32(off + 4, true) + view.getUint32(off + 8, true)
    if (next > buf.length) break
    out[n] = new Connection(batch, n, off, view)
    n++
    off = next
  }
  out.length = n
  return out
}
