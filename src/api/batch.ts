/**
 * One poll as seen from JS: views over the three `Buffer`s the native poller hands over
 * (an index of 32-byte entries, the netlink payloads, the ArchivalRecord lines; see
 * docs/internals/poll/batch-format.md). Nothing is copied: `Connection` objects are made
 * on first access to `connections`, and typed fields are decoded lazily, with one native
 * call for the whole batch, only if a consumer asks.
 */
import type { Buffer } from 'node:buffer'

import { TcpinfoError } from '../errors.js'
import { callNative, native, type NativeBatch, type NativePollStats, type NativePortStats } from '../native.js'
import { FLAG_FROM_DESTROY_EVENT, FLAG_HAS_RECORD, FLAG_UNSEEN, INDEX, RECORD_KINDS as KINDS, type WarningCode } from '../uapi.js'
import { regionOf, view as regionView, type Region } from './region-buffer.js'
import { tcpInfoOf } from './tcp-info.js'
import type { DecodedConnection, SocketId, TcpInfo } from './types.js'

const INDEX_ENTRY_LEN = INDEX.entryLen
/** The cookie as a u64 word of the index: entry `i`'s is word `i * WORDS_PER_ENTRY + COOKIE_WORD`. */
const WORDS_PER_ENTRY = INDEX_ENTRY_LEN / 8
const COOKIE_WORD = INDEX.cookie / 8
/** Whether typed arrays read the index's little-endian words as they are. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Why a connection is in a batch. */
export type ChangeKind = (typeof KINDS)[number]

/**
 * Counters of one poll: the binding's `NativePollStats`, documented field by field in
 * crates/tcpinfo-node/src/native_poller.rs (times in ns, sizes in bytes). One definition, so
 * a counter added in Rust reaches the TypeScript type without a second list.
 */
export type PollStats = NativePollStats

/** Per-port accounting of one poll: the binding's `NativePortStats` (crates/tcpinfo-node/src/native_port_stats.rs). */
export type PortStats = NativePortStats

/** The network namespace a connection lives in. */
export interface Netns {
  /** Namespace inode, as `readlink /proc/PID/ns/net` shows it (`net:[INODE]`). */
  inode: number
  /** The `/run/netns` name, else a container id from a member process's cgroup, else `null`. */
  name: string | null
  /** The namespace tcpinfo runs in (or the one `netns` named): UUIDs in M-Lab's format. */
  host: boolean
  /** Between the prefix and the cookie in this namespace's UUIDs (docs/netns.md); `''` for the host. */
  uuidTag: string
}

/** A soft error of one poll: the poll still returned all it could. */
export interface PollWarning {
  /** What went wrong (stable). */
  code: WarningCode
  /** One-line explanation. */
  message: string
}

/** Where an archived record came from: its file and the file's header line (`Metadata`). */
export interface RecordMetadata {
  /** File path, or `-` for a stream. */
  source: string
  /** `Metadata.UUID`, when the file has a header line. */
  uuid?: string
  /** `Metadata.Sequence`: the file's number in the connection's series (0 = first). */
  sequence?: number
  /** `Metadata.StartTime`: when the connection was first seen, unix ns. */
  startTimeNs?: bigint
}

/** One connection reported by a poll. Fields are read from the batch's buffers on access. */
export class Connection {
  readonly #batch: Batch
  readonly #index: number
  /** Offset of this record's entry in the index. */
  readonly #off: number
  /** Little-endian reads of the index; plain fields, not private getters (V8 runs those in its runtime). */
  readonly #view: DataView

  /** @internal */
  constructor(batch: Batch, index: number, view: DataView) {
    this.#batch = batch
    this.#index = index
    this.#off = index * INDEX_ENTRY_LEN
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
    // A typed-array load is inlined by the JIT, `getBigUint64` is a builtin call (3x slower);
    // the DataView remains for an unaligned index and throws once the batch is released.
    return this.#batch.cookies?.[this.#index * WORDS_PER_ENTRY + COOKIE_WORD] ?? this.#view.getBigUint64(this.#off + INDEX.cookie, true)
  }
  /** The network namespace of the connection. */
  get netns(): Netns | undefined {
    return this.#batch.namespaces[this.#view.getUint32(this.#off + INDEX.netns, true)]
  }
  /**
   * M-Lab UUID: `<prefix>_<cookie as %016X>`; in a namespace other than the host's
   * (`netns: 'all'`), `<prefix>_<uuidTag>_<cookie as %016X>` (docs/netns.md). For an
   * archived record: its file's `Metadata.UUID`.
   */
  get uuid(): string {
    return this.#batch.recordUuid(this.#index, this.cookie)
  }
  /** When the record was taken, unix ns: the poll's start, or an archived record's `Timestamp`. */
  get timestampNs(): bigint {
    return this.#batch.recordTimestampNs(this.#index)
  }
  /** {@link timestampNs} as a `Date` (ms resolution). */
  get timestamp(): Date {
    return new Date(Number(this.timestampNs / 1_000_000n))
  }
  /** For an archived record: its source file and the file's header metadata; `undefined` for live ones. */
  get metadata(): RecordMetadata | undefined {
    return this.#batch.recordMetadata(this.#index)
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
    return regionView(this.#batch.payloadRegion, view.getUint32(off + 4, true), view.getUint32(off + 8, true))
  }
  /** The `ArchivalRecord` JSON line including `\n`, or `null` like {@link raw}. */
  get archivalLine(): Buffer | null {
    const view = this.#view
    const off = this.#off
    if (!(view.getUint8(off + 1) & FLAG_HAS_RECORD)) return null
    return regionView(this.#batch.lineRegion, view.getUint32(off + 12, true), view.getUint32(off + 16, true))
  }
  /** Everything decoded (lazy; the first access decodes the whole batch in one native call). */
  get decoded(): DecodedConnection | undefined {
    return this.#batch.decodeAll()[this.#index] ?? undefined
  }
  /** Socket addresses and ports; `undefined` for a close found by the sweep. */
  get id(): SocketId | undefined {
    return this.decoded?.id
  }
  /**
   * Decoded `tcp_info`; `undefined` when the kernel sent none. Read from the record's bytes
   * on first access (about a microsecond; `src/api/tcp-info.ts`), the same object as
   * `decoded.tcpInfo`.
   */
  get tcpInfo(): TcpInfo | undefined {
    return this.#batch.tcpInfoAt(this.#index)
  }
  /** The `ArchivalRecord` JSON text without the trailing newline. */
  get archivalRecord(): string | null {
    const line = this.archivalLine
    return line ? line.toString('utf8', 0, line.length - 1) : null
  }

  /** Plain-object view for `console.log` and `JSON.stringify`. */
  toJSON(): Record<string, unknown> {
    return { kind: this.kind, uuid: this.uuid, cookie: this.cookie.toString(), family: this.family, state: this.state, netns: this.netns }
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
  /**
   * Position of this batch among the parts of its poll, from 0: a poll whose records
   * outgrow 4 MiB (a first poll of ~3k+ sockets) is delivered in parts sharing `seq`
   * as it goes, so memory stays bounded.
   */
  readonly part: number
  /** More parts of this poll follow; the last part has the closes, `complete`, `socketsSeen` and the stats. */
  readonly more: boolean
  readonly warnings: readonly PollWarning[]
  readonly stats: PollStats
  /** The network namespaces of this batch's connections (`Connection.netns` is one of them). */
  readonly namespaces: readonly Netns[]
  /**
   * Per-port accounting (watch option `metricPorts`): one entry per configured port, in
   * configured order, with this poll's opened and closed connections on it and their bytes
   * (deltas); empty when no port is configured or nothing happened on them.
   */
  readonly portStats: readonly PortStats[]
  /** Number of reported connections (opened + changed + closed). */
  readonly size: number
  /** Bytes of the batch's buffers (index, payloads and lines), as counted against `maxQueuedBytes`. */
  readonly byteLength: number
  /** @internal The index region: one 32-byte entry per connection. */
  readonly index: Buffer
  /** @internal The netlink payloads, back to back. */
  readonly payloads: Buffer
  /** @internal The ArchivalRecord lines, back to back. */
  readonly lines: Buffer
  /** @internal */
  readonly payloadRegion: Region
  /** @internal */
  readonly lineRegion: Region
  /** @internal UUID prefix of this watch. */
  readonly uuidPrefix: string
  /** @internal The index as u64 words (for the cookie); unset when unaligned or big-endian. */
  readonly cookies: BigUint64Array | undefined
  #connections: readonly Connection[] | undefined
  #decoded: (DecodedConnection | null)[] | undefined
  #released = false
  #tcpInfos: (TcpInfo | null | undefined)[] | undefined
  #indexView: DataView | undefined
  #payloadView: DataView | undefined

  /** @internal */
  constructor(b: NativeBatch, uuidPrefix: string) {
    this.seq = b.seq
    this.timestampNs = b.timestampNs
    this.timestamp = new Date(Number(b.timestampNs / 1_000_000n))
    this.socketsSeen = b.socketsSeen
    this.complete = b.complete
    this.part = b.part
    this.more = b.more
    this.warnings = b.warnings
    this.stats = b.stats
    this.portStats = b.portStats ?? []
    this.namespaces = (b.namespaces ?? []).map((n) => ({ inode: n.inode, name: n.name ?? null, host: n.host, uuidTag: n.uuidTag }))
    this.index = b.index
    this.payloads = b.payloads
    this.lines = b.lines
    this.payloadRegion = regionOf(b.payloads)
    this.lineRegion = regionOf(b.lines)
    this.size = Math.floor(b.index.length / INDEX_ENTRY_LEN)
    this.byteLength = b.index.length + b.payloads.length + b.lines.length
    this.uuidPrefix = uuidPrefix
    const ix = b.index
    this.cookies = LITTLE_ENDIAN && ix.byteOffset % 8 === 0 ? new BigUint64Array(ix.buffer, ix.byteOffset, Math.floor(ix.length / 8)) : undefined
  }

  /** All reported connections, in report order; made on first access (no copy). */
  get connections(): readonly Connection[] {
    if (this.#released) throw new TcpinfoError('ERR_CLOSED', `batch ${this.seq} was released: read its connections before release()`)
    this.#connections ??= frame(this)
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

  /**
   * All `ArchivalRecord` lines of this batch, in report order, as one JSONL buffer: no copy,
   * the native side writes them back to back.
   */
  archivalLines(): Buffer {
    return this.lines
  }

  /** Whether {@link release} was called. */
  get released(): boolean {
    return this.#released
  }

  /**
   * Gives the batch's memory back to the poller now instead of at V8's next garbage
   * collection. Optional, and worth it when batches are large: the first poll of 100k
   * sockets is ~125 MiB in 4 MiB parts, which V8 alone keeps until a GC. Afterwards the
   * batch's connections (and any `Connection` or `Buffer` taken from it) can no longer be
   * read; copy what you keep first. Idempotent.
   */
  release(): void {
    if (this.#released) return
    this.#released = true
    this.#connections = undefined
    this.#decoded = undefined
    this.#tcpInfos = undefined
    this.#indexView = undefined
    this.#payloadView = undefined
    for (const region of [this.index, this.payloads, this.lines]) {
      // Only a region that owns its whole ArrayBuffer (never a slice of Node's pool).
      if (region.length > 0 && region.byteOffset === 0 && region.byteLength === region.buffer.byteLength) {
        callNative(() => native().nativeReleaseRegion(region.buffer as ArrayBuffer))
      }
    }
  }

  /** @internal The UUID of record `i` (live: prefix and cookie). */
  recordUuid(i: number, cookie: bigint): string {
    const hex = cookie.toString(16).toUpperCase().padStart(16, '0')
    const ns = this.namespaces.length > 1 ? this.namespaces[this.index.readUInt32LE(i * INDEX_ENTRY_LEN + INDEX.netns)] : this.namespaces[0]
    return ns?.uuidTag ? `${this.uuidPrefix}_${ns.uuidTag}_${hex}` : `${this.uuidPrefix}_${hex}`
  }

  /** @internal The timestamp of record `i` (live: the poll's). */
  recordTimestampNs(_i: number): bigint {
    return this.timestampNs
  }

  /** @internal The source of record `i` (live: none). */
  recordMetadata(_i: number): RecordMetadata | undefined {
    return undefined
  }

  /**
   * @internal Decodes every record once, in one native call; each `tcpInfo` is built on the
   * JS side from its bytes ({@link tcpInfoAt}), in the place the native side kept for it.
   */
  decodeAll(): (DecodedConnection | null)[] {
    if (!this.#decoded) {
      const all = callNative(() => native().nativeDecodeRecords(this.index, this.payloads, true)) as (DecodedConnection | null)[]
      for (let i = 0; i < all.length; i++) {
        const d = all[i]
        if (d?.tcpInfo !== undefined) d.tcpInfo = this.tcpInfoAt(i)
      }
      this.#decoded = all
    }
    return this.#decoded
  }

  /** @internal The decoded `tcp_info` of record `i` (made once, on first access). */
  tcpInfoAt(i: number): TcpInfo | undefined {
    const cache = (this.#tcpInfos ??= new Array<TcpInfo | null | undefined>(this.size))
    const hit = cache[i]
    if (hit !== undefined) return hit ?? undefined
    if (this.#released) throw new TcpinfoError('ERR_CLOSED', `batch ${this.seq} was released: read its connections before release()`)
    const view = (this.#indexView ??= new DataView(this.index.buffer, this.index.byteOffset, this.index.byteLength))
    const off = i * INDEX_ENTRY_LEN
    let info: TcpInfo | undefined
    if (off + INDEX_ENTRY_LEN <= view.byteLength && view.getUint8(off + 1) & FLAG_HAS_RECORD) {
      const start = view.getUint32(off + 4, true)
      const len = view.getUint32(off + 8, true)
      const p = this.payloads
      if (start + len <= p.length) {
        const pv = (this.#payloadView ??= new DataView(p.buffer, p.byteOffset, p.byteLength))
        info = tcpInfoOf(pv, start, len)
      }
    }
    cache[i] = info ?? null
    return info
  }
}

function frame(batch: Batch): Connection[] {
  const { index } = batch
  const view = new DataView(index.buffer, index.byteOffset, index.byteLength)
  const out = new Array<Connection>(batch.size)
  for (let i = 0; i < out.length; i++) out[i] = new Connection(batch, i, view)
  return out
}
