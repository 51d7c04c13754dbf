/**
 * `readArchive()`: tcpinfo and M-Lab tcp-info archives back as records, typed exactly like
 * `watch()`'s connections. zstd, JSON and base64 are decoded in Rust
 * (`crates/tcpinfo-archive-read`), a batch of thousands of records per native call.
 * See docs/internals/archive/design.md.
 */
import type { Buffer } from 'node:buffer'

import type { Connection } from '../api/batch.js'
import { TcpinfoError } from '../errors.js'
import { callNative, native, type NativeArchiveError, type NativeArchiveReader } from '../native.js'
import { ARCHIVE_STATS_FIELDS, ArchiveBatch, type ArchiveStats } from './archive-batch.js'
import { resolveSources, type ArchiveInput, type ArchiveSource } from './sources.js'

/** Options of {@link readArchive}. */
export interface ReadArchiveOptions {
  /**
   * What a corrupt, truncated or foreign input does. `'throw'` (default): every valid record
   * before the damage is delivered, then the iteration throws one {@link ArchiveReadError}.
   * `'skip'`: bad records are skipped, a damaged file ends where the damage starts, unreadable
   * files are passed over; all are counted in `stats` and listed in `errors`.
   */
  onError?: 'throw' | 'skip'
  /** Records per batch (default 8192 for {@link ArchiveReader.batches}, 2048 when iterating records). */
  maxBatchRecords?: number
  /** Stops the read; the iteration then throws the signal's reason. */
  signal?: AbortSignal
}

/** What went wrong, for {@link ArchiveReadError.kind}. */
export type ArchiveErrorKind = 'truncated' | 'compression' | 'json' | 'record' | 'line-too-long' | 'netlink' | 'foreign' | 'io'

/** A corrupt, truncated, foreign or unreadable archive: `code` is `ERR_ARCHIVE`. */
export class ArchiveReadError extends TcpinfoError {
  /** What went wrong. */
  readonly kind: ArchiveErrorKind
  /** The file (or `-`, `stream`). */
  readonly source: string
  /** 1-based line (or netlink message) of the decompressed text, when the error is about one. */
  readonly line: number | undefined
  /** Byte offset: of the decompressed text for line errors; of the file as stored for zstd errors. */
  readonly byteOffset: number
  /** Whether {@link byteOffset} counts stored (compressed) bytes. */
  readonly compressedOffset: boolean

  constructor(e: Omit<NativeArchiveError, 'code'> & { kind: string }, options?: { cause?: unknown }) {
    super('ERR_ARCHIVE', e.message, options)
    this.name = 'ArchiveReadError'
    this.kind = e.kind as ArchiveErrorKind
    this.source = e.source
    this.line = e.line ?? undefined
    this.byteOffset = e.byteOffset
    this.compressedOffset = e.compressedOffset
  }
}

/** What every native pull returns besides its payload. */
interface Pulled {
  errors: NativeArchiveError[]
  stats: number[]
}

/** Bounds of the native reader's batches (`NativeArchiveReaderOptions`). */
interface BatchBounds {
  maxBatchRecords?: number
  maxBatchBytes?: number
}

/** Errors kept in {@link ArchiveReader.errors}; more are only counted. */
const MAX_KEPT_ERRORS = 100

/**
 * Batch bounds when iterating records: a batch of 2048 records (~2 MiB) is done with before
 * the next young-generation GC, so its buffers die young and return to the reader's pool at
 * once; 8192-record batches outlived a GC, were promoted, came back only with the major GCs,
 * and their successors were written into fresh pages (page faults; docs/BENCHMARKS.md,
 * session 7).
 */
const RECORD_BATCH = { maxBatchRecords: 2048, maxBatchBytes: 2 << 20 }

/** The result of {@link readArchive}: iterate it for records, or {@link batches} for batches. */
export class ArchiveReader implements AsyncIterable<Connection> {
  /** Counters so far: lines, headers, records, errors, skipped, bytesIn, bytesText, sourcesDone, plus `files`. */
  readonly stats: ArchiveStats & { files: number; filesTotal: number; bytesTotal: number }
  /** The first errors met (all of them are counted in `stats.errors`). */
  readonly errors: ArchiveReadError[] = []
  readonly #input: ArchiveInput | readonly ArchiveInput[]
  readonly #options: ReadArchiveOptions
  #started = false

  /** @internal */
  constructor(input: ArchiveInput | readonly ArchiveInput[], options: ReadArchiveOptions) {
    this.#input = input
    this.#options = options
    this.stats = { ...(Object.fromEntries(ARCHIVE_STATS_FIELDS.map((k) => [k, 0])) as ArchiveStats), files: 0, filesTotal: 0, bytesTotal: 0 }
  }

  /** The records in batches (one native call each): the fastest way through large archives. Once only. */
  batches(): AsyncGenerator<ArchiveBatch, void, undefined> {
    return this.#batches({})
  }

  #batches(bounds: BatchBounds): AsyncGenerator<ArchiveBatch, void, undefined> {
    return this.#run(
      (r, flush) => r.next(flush),
      (b) => {
        const batch = new ArchiveBatch(b)
        return batch.size > 0 ? batch : undefined
      },
      true,
      bounds,
    )
  }

  /**
   * @internal CSV rows of the records (column indexes as `nativeCsvHeader`), made in Rust per
   * batch; the batches never reach JS, so memory stays bounded whatever V8's GC pace.
   */
  csvChunks(columns: number[]): AsyncGenerator<Buffer, void, undefined> {
    return this.#run(
      (r, flush) => r.nextCsv(flush, columns),
      (c) => (c.rows > 0 ? c.text : undefined),
    )
  }

  /**
   * @internal Decoded JSON lines of the records (as `tcpinfo csv --json` prints them), made in
   * Rust per batch like {@link csvChunks}.
   */
  jsonChunks(): AsyncGenerator<Buffer, void, undefined> {
    return this.#run(
      (r, flush) => r.nextJson(flush),
      (c) => (c.rows > 0 ? c.text : undefined),
    )
  }

  /**
   * With `turns`, the event loop gets a turn after each item: Node releases the memory of a
   * collected external `Buffer` in an immediate callback, so without turns a chunk that
   * decodes into many batches keeps every earlier batch's buffers from the reader's pool
   * (they came back in waves of ~20 batches, and the batches between were written into
   * fresh pages: a fifth of the CPU in page faults; docs/BENCHMARKS.md).
   */
  async *#run<N extends Pulled, T>(
    pull: (r: NativeArchiveReader, flush: boolean) => N | null,
    wrap: (n: N) => T | undefined,
    turns = false,
    bounds: BatchBounds = {},
  ): AsyncGenerator<T, void, undefined> {
    if (this.#started) throw new TcpinfoError('ERR_CLOSED', 'an ArchiveReader is read once')
    this.#started = true
    const skip = this.#options.onError === 'skip'
    const sources = await this.#resolve(skip)
    this.stats.filesTotal = sources.length
    this.stats.bytesTotal = sources.reduce((n, s) => n + (s.size ?? 0), 0)
    const size = this.#options.maxBatchRecords ? { maxBatchRecords: this.#options.maxBatchRecords } : bounds
    const reader = callNative(() => new (native().NativeArchiveReader)({ stopOnError: !skip, ...size }))
    for (const src of sources) {
      reader.begin(src.name)
      try {
        for await (const chunk of src.open()) {
          this.#options.signal?.throwIfAborted()
          reader.feed(chunk as Buffer)
          yield* this.#turning(this.#drain(reader, false, pull, wrap), turns)
        }
      } catch (e) {
        if (e instanceof ArchiveReadError || this.#options.signal?.aborted) throw e
        this.#ioError(src.name, e, skip)
      }
      reader.end()
      this.stats.files++
      yield* this.#turning(this.#drain(reader, false, pull, wrap), turns)
    }
    yield* this.#turning(this.#drain(reader, true, pull, wrap), turns)
  }

  /** `items`, with an event-loop turn after each when `turns` (see {@link #run}). */
  async *#turning<T>(items: Generator<T, void, undefined>, turns: boolean): AsyncGenerator<T, void, undefined> {
    if (!turns) return yield* items
    for (const item of items) {
      yield item
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  /**
   * The records, one by one, in file order. A plain iterator over each batch rather than an
   * async generator with `yield*`: one promise per record instead of a chain of them, and
   * not an `async` function either (a resolved promise is made directly). Each record's
   * `Connection` is made when it is reached and not kept by its batch, so it dies young:
   * framing a batch's 8,192 up front kept them alive across the scavenges of the batch and
   * promoted them, for the major GC to collect (docs/BENCHMARKS.md, session 6).
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Connection> {
    const batches = this.#batches(RECORD_BATCH)
    let batch: ArchiveBatch | undefined
    let size = 0
    let i = 0
    const nextBatch = async (): Promise<IteratorResult<Connection>> => {
      for (;;) {
        const r = await batches.next()
        if (r.done) return { done: true, value: undefined }
        batch = r.value
        size = batch.size
        i = 0
        if (i < size) return { done: false, value: batch.connectionAt(i++) }
      }
    }
    const it: AsyncIterableIterator<Connection> = {
      next(): Promise<IteratorResult<Connection>> {
        if (i < size) return Promise.resolve({ done: false, value: (batch as ArchiveBatch).connectionAt(i++) })
        return nextBatch()
      },
      async return(): Promise<IteratorResult<Connection>> {
        size = 0
        await batches.return()
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator]() {
        return it
      },
    }
    return it
  }

  async #resolve(skip: boolean): Promise<ArchiveSource[]> {
    const inputs = Array.isArray(this.#input) ? (this.#input as readonly ArchiveInput[]) : [this.#input as ArchiveInput]
    const out: ArchiveSource[] = []
    for (const input of inputs) {
      try {
        for (const s of await resolveSources(input)) out.push(s)
      } catch (e) {
        this.#ioError(typeof input === 'string' ? input : 'stream', e, skip)
      }
    }
    return out
  }

  #ioError(source: string, e: unknown, skip: boolean): void {
    const message = `${source}: ${(e as Error)?.message ?? String(e)} (io)`
    const err = new ArchiveReadError({ kind: 'io', source, byteOffset: 0, compressedOffset: false, message }, { cause: e })
    this.stats.errors++
    if (!skip) throw err
    if (this.errors.length < MAX_KEPT_ERRORS) this.errors.push(err)
  }

  *#drain<N extends Pulled, T>(reader: NativeArchiveReader, flush: boolean, pull: (r: NativeArchiveReader, flush: boolean) => N | null, wrap: (n: N) => T | undefined): Generator<T, void, undefined> {
    for (;;) {
      const n = callNative(() => pull(reader, flush))
      if (!n) return
      ARCHIVE_STATS_FIELDS.forEach((k, i) => (this.stats[k] += n.stats[i] ?? 0))
      const errors = n.errors.map((e) => new ArchiveReadError(e))
      for (const e of errors) if (this.errors.length < MAX_KEPT_ERRORS) this.errors.push(e)
      const item = wrap(n)
      if (item !== undefined) yield item
      if (errors[0] && this.#options.onError !== 'skip') throw errors[0]
    }
  }
}

/**
 * Reads archives: M-Lab tcp-info / tcpinfo `.jsonl.zst` files (several zstd frames, an
 * unfinished last frame), plain `.jsonl`, and raw netlink dumps; from paths, directories
 * (recursively, in time order), globs, `'-'` (stdin) or readable streams.
 *
 * Each record is a {@link Connection} like `watch()`'s, plus `timestamp`/`timestampNs` (the
 * record's `Timestamp`) and `metadata` (file, UUID, sequence, start time of its header line).
 *
 * @example
 * for await (const c of readArchive('/var/spool/tcpinfo/2024/05/01')) {
 *   console.log(c.uuid, c.timestamp, c.tcpInfo?.bytesAcked)
 * }
 * @throws {ArchiveReadError} (code `ERR_ARCHIVE`, with `source`, `line`, `byteOffset`) during
 * iteration when an input is corrupt, truncated, foreign or unreadable, after every valid
 * record before the damage (unless `onError: 'skip'`).
 */
export function readArchive(input: ArchiveInput | readonly ArchiveInput[], options: ReadArchiveOptions = {}): ArchiveReader {
  return new ArchiveReader(input, options)
}
