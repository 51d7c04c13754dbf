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

/** One connection reported by a poll. */
export class Connection {
  /** Why it is reported. */
  readonly kind: ChangeKind
  /** Kernel socket cookie. */
  readonly cookie: bigint
  /** M-Lab UUID: `<prefix>_<cookie as %016X>`. */
  readonly uuid: string
  /** Address family: 2 or 10. */
  readonly family: number
  /** TCP state (0 if unknown: a close found by the sweep). */
  readonly state: number
  /** Closed, and reported by the kernel's destroy event with the final counters. */
  readonly fromDestroyEvent: boolean
  /** Closed before any poll saw it (it lived less than one interval). */
  readonly unseen: boolean
  /** The netlink payload (`inet_diag_msg` + attributes), or `null` for a close found by the sweep. */
  readonly raw: Buffer | null
  /** The `ArchivalRecord` JSON line including `\n`, or `null` like {@link raw}. */
  readonly archivalLine: Buffer | null
  readonly #batch: Batch
  readonly #index: number

  /** @internal */
  constructor(batch: Batch, index: number, header: DataView, raw: Buffer | null, line: Buffer | null, prefix: string) {
    this.#batch = batch
    this.#index = index
    this.kind = KINDS[header.getUint8(0)] ?? 'changed'
    const flags = header.getUint8(1)
    this.family = header.getUint8(2)
    this.state = header.getUint8(3)
    this.cookie = header.getBigUint64(16, true)
    this.uuid = `${prefix}_${this.cookie.toString(16).toUpperCase().padStart(16, '0')}`
    this.fromDestroyEvent = (flags & FLAG_FROM_DESTROY_EVENT) !== 0
    this.unseen = (flags & FLAG_UNSEEN) !== 0
    this.raw = flags & FLAG_HAS_RECORD ? raw : null
    this.archivalLine = flags & FLAG_HAS_RECORD ? line : null
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
    return this.archivalLine ? this.archivalLine.toString('utf8', 0, this.archivalLine.length - 1) : null
  }
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
  /** All reported connections, in report order. */
  readonly connections: readonly Connection[]
  /** The framed records as received from the native side. */
  readonly records: Buffer
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
    this.connections = frame(this, b.records, uuidPrefix)
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

  /** All `ArchivalRecord` lines of this batch as one JSONL buffer. */
  archivalLines(): Buffer {
    return Buffer.concat(this.connections.flatMap((c) => (c.archivalLine ? [c.archivalLine] : [])))
  }

  /** @internal Decodes every record once, in one native call. */
  decodeAll(): (DecodedConnection | null)[] {
    this.#decoded ??= callNative(() => native().nativeDecodeRecords(this.records)) as (DecodedConnection | null)[]
    return this.#decoded
  }
}

function frame(batch: Batch, buf: Buffer, prefix: string): Connection[] {
  const out: Connection[] = []
  let off = 0
  while (off + RECORD_HEADER_LEN <= buf.length) {
    const header = new DataView(buf.buffer, buf.byteOffset + off, RECORD_HEADER_LEN)
    const rawLen = header.getUint32(4, true)
    const lineLen = header.getUint32(8, true)
    const body = off + RECORD_HEADER_LEN
    const raw = buf.subarray(body, body + rawLen)
    const line = buf.subarray(body + rawLen, body + rawLen + lineLen)
    out.push(new Connection(batch, out.length, header, raw, line, prefix))
    off = body + rawLen + lineLen
  }
  return out
}
