/**
 * `ArchiveWriter`: M-Lab tcp-info compatible archives from `watch()` batches, one call per
 * poll. Compression and file I/O run on a native writer thread (`tcpinfo-archive`); this
 * class only converts and owns the lifecycle. Policy (when to rotate, what to log) is the
 * caller's: see docs/internals/archive/design.md.
 */
import type { Batch } from '../api/batch.js'
import { TcpinfoError } from '../errors.js'
import { callNative, native, normalizeNativeError, type NativeArchiveWriter } from '../native.js'

const asyncDispose: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')

/** Causes under which write errors are counted. */
export type ArchiveErrorCause = 'no_space' | 'quota' | 'permission' | 'read_only' | 'too_many_files' | 'exists' | 'other'

/** Options of {@link ArchiveWriter}. */
export interface ArchiveWriterOptions {
  /** Root directory: files go to `<output>/YYYY/MM/DD/<UUID>.<%05d seq>.jsonl.zst`. */
  output: string
  /** UUID prefix; must be the prefix of the batches written (`watch()`'s `uuidPrefix`). */
  uuidPrefix: string
  /** Data reaches the files at least this often, ms (default 1000). */
  flushIntervalMs?: number
  /** Files open at once; the least recently written is finished beyond it (default 16384, at most the fd limit minus 512). */
  maxOpenFiles?: number
  /** A file without a record for this long is finished, ms (default 120000). */
  idleCloseMs?: number
  /** Polls queued in front of the writer thread (default 64). */
  queueDepth?: number
  /** Bytes queued in front of the writer thread past which it takes no more (default 8 MiB; it may hold one batch more). */
  maxQueuedBytes?: number
  /** zstd level, -7..22 (default 1). */
  level?: number
  /** M-Lab's `-anonymize.ip`: `none` (default) or `netblock` (v4 /24, v6 /48, local addresses kept). */
  anonymize?: 'none' | 'netblock'
  /** Addresses never anonymized (default: the addresses of the local interfaces at start). */
  anonymizeKeep?: string[]
}

/** Counters of an {@link ArchiveWriter}; byte counts in bytes. */
export interface ArchiveStats {
  filesOpened: number
  filesClosed: number
  openFiles: number
  framesWritten: number
  bytesCompressed: number
  bytesUncompressed: number
  recordsWritten: number
  /** Records that will never reach a file (see the native docs); a close only if the disk refused it. */
  recordsDropped: number
  batchesAccepted: number
  /** Polls written while the queue was over its limits: only their closes were kept. */
  batchesOverLimit: number
  queueDepth: number
  queuedBytes: number
  pendingBytes: number
  connections: number
  writeErrors: Record<ArchiveErrorCause, number>
}

/** A file-system error to log: at most one per cause per minute, `count` says how many it stands for. */
export interface ArchiveErrorEvent {
  cause: ArchiveErrorCause
  op: string
  path: string
  message: string
  count: number
}

/**
 * Writes the archive of the batches it is given.
 *
 * @example
 * const w = new ArchiveWriter({ output: './data', uuidPrefix: prefix })
 * for await (const batch of watch({ uuidPrefix: prefix })) {
 *   if (!w.write(batch)) await w.waitForRoom()
 * }
 * await w.close()
 * @throws {TcpinfoError} `ERR_CONFIG` for a bad option.
 */
export class ArchiveWriter implements AsyncDisposable {
  readonly #native: NativeArchiveWriter
  readonly #prefix: string

  constructor(options: ArchiveWriterOptions) {
    const Native = native().NativeArchiveWriter
    const { output, ...rest } = options
    this.#native = callNative(() => new Native({ ...rest, outputDir: output }))
    this.#prefix = options.uuidPrefix
  }

  /**
   * Queues one poll (never blocks; the poll's buffers are copied once). Returns whether the
   * writer has room for the next one: on `false`, `await waitForRoom()` before pulling the
   * next batch, so the poller skips polls (folding them, keeping closes) instead of the
   * writer dropping records.
   * @throws {TcpinfoError} `ERR_CONFIG` if the batch's UUID prefix is not the writer's;
   * `ERR_CLOSED` after {@link close}.
   */
  write(batch: Batch): boolean {
    if (batch.uuidPrefix !== this.#prefix) {
      throw new TcpinfoError('ERR_CONFIG', `batch UUID prefix ${JSON.stringify(batch.uuidPrefix)} is not the writer's ${JSON.stringify(this.#prefix)}`)
    }
    const tags = batch.namespaces.length > 0 && batch.namespaces.some((n) => n.uuidTag !== '') ? batch.namespaces.map((n) => n.uuidTag) : undefined
    return callNative(() => this.#native.write(batch.index, batch.lines, tags))
  }

  /** Resolves `true` once the queue is at most half full, `false` after `timeoutMs`. */
  async waitForRoom(timeoutMs = 1000): Promise<boolean> {
    return this.#native.waitForRoom(timeoutMs).catch((e: unknown) => Promise.reject(normalizeNativeError(e)))
  }

  /** Finishes every open file created at least `ageMs` ago; their next records start new sequence files. */
  rotateOlderThan(ageMs: number): void {
    callNative(() => this.#native.rotateOlderThan(ageMs))
  }

  /** Finishes the open files of these UUIDs; returns how many were this writer's UUIDs. */
  rotate(uuids: readonly string[]): number {
    return callNative(() => this.#native.rotateUuids([...uuids]))
  }

  /** Writes everything queued so far to the files. @throws {TcpinfoError} `ERR_ARCHIVE_TIMEOUT`. */
  async flush(timeoutMs = 5000): Promise<void> {
    return this.#native.flush(timeoutMs).catch((e: unknown) => Promise.reject(normalizeNativeError(e)))
  }

  /** The writer's counters. */
  stats(): ArchiveStats {
    return this.#native.stats() as ArchiveStats
  }

  /** File-system errors to log since the last call (rate-limited per cause). */
  takeErrors(): ArchiveErrorEvent[] {
    return this.#native.takeEvents() as ArchiveErrorEvent[]
  }

  /**
   * Writes what is queued, finishes every file (complete zstd frames) and stops the thread.
   * Idempotent. @throws {TcpinfoError} `ERR_ARCHIVE_TIMEOUT` if files were still being
   * finished at the deadline (they keep every frame written before it).
   */
  async close(deadlineMs = 2000): Promise<void> {
    return this.#native.close(deadlineMs).catch((e: unknown) => Promise.reject(normalizeNativeError(e)))
  }

  async [asyncDispose](): Promise<void> {
    await this.close()
  }
}
