/**
 * The collector: the composition root of `tcpinfo collect`. It builds the poller and the
 * archive writer from a {@link CollectorConfig}, moves each poll's batch to the writer
 * (one native call per poll; compression and file I/O on the writer's thread), drives
 * rotation by age on a timer, logs what goes wrong (one line per cause, rate-limited),
 * and stops cleanly: every file finished with complete frames.
 *
 * Backpressure: when the writer's queue is full the collector stops pulling batches until
 * it has room; the poller then skips polls and folds their changes into the next one,
 * keeping close records (its own mechanism), so the archive loses nothing but
 * intermediate states.
 */
import { ArchiveWriter, type ArchiveStats } from '../archive/writer.js'
import type { Batch } from '../api/batch.js'
import { resolveUuidPrefix } from '../api/uuid.js'
import { watch } from '../api/watch.js'
import type { CollectorConfig } from '../config/collector-config.js'
import { uuidPrefixField } from '../config/poll-options.js'
import { checkField } from '../config/schema.js'
import type { Logger } from '../log.js'

/** How often rotation by age is checked: a tenth of the age, at most every second. */
const MAX_ROTATE_CHECK_MS = 1000
/** How long a stop may take to finish the files, ms (the process must be gone within 2 s). */
export const STOP_DEADLINE_MS = 1500
/** Log lines of one cause at most this often, ms. */
const LOG_EVERY_MS = 60_000

/** Counters of a running collector. */
export interface CollectorStats {
  polls: number
  skippedPolls: number
  recordsOffered: number
  waitsForWriter: number
  archive: ArchiveStats
}

/** A running collector. */
export class Collector {
  readonly config: CollectorConfig
  readonly uuidPrefix: string
  readonly #log: Logger
  readonly #writer: ArchiveWriter
  readonly #abort = new AbortController()
  readonly #done: Promise<void>
  #polls = 0
  #skipped = 0
  #records = 0
  #waits = 0

  /**
   * Starts polling and archiving.
   * @throws {TcpinfoError} `ERR_CONFIG` (e.g. a UUID prefix file whose content is not a
   * valid prefix), or what the archive writer throws for an unusable output directory.
   */
  constructor(config: CollectorConfig, log: Logger) {
    this.config = config
    this.#log = log
    this.uuidPrefix = checkField(uuidPrefixField, resolveUuidPrefix({ uuidPrefixFile: config.uuidPrefixFile }), 'the UUID prefix')
    this.#writer = new ArchiveWriter({
      output: config.output,
      uuidPrefix: this.uuidPrefix,
      flushIntervalMs: config.flushIntervalMs,
      maxOpenFiles: config.maxOpenFiles,
      anonymize: config.anonymizeIp,
    })
    this.#done = this.#run()
  }

  /** Resolves when polling has ended (stop, `reps` reached, or a fatal error) and every file is finished. */
  get done(): Promise<void> {
    return this.#done
  }

  /** Stops polling and finishes every file; resolves when done. Idempotent. */
  async stop(): Promise<void> {
    this.#abort.abort()
    return this.#done
  }

  /** Current counters. */
  stats(): CollectorStats {
    return { polls: this.#polls, skippedPolls: this.#skipped, recordsOffered: this.#records, waitsForWriter: this.#waits, archive: this.#writer.stats() }
  }

  async #run(): Promise<void> {
    const c = this.config
    const rotateEvery = Math.min(MAX_ROTATE_CHECK_MS, Math.max(1, c.rotateAgeMs / 10))
    const rotation = setInterval(() => this.#rotate(), rotateEvery)
    try {
      const w = watch({
        intervalMs: c.intervalMs,
        excludeLocal: c.excludeLocal,
        excludeSrcPorts: [...c.excludeSrcPorts],
        excludeDst: [...c.excludeDst],
        uuidPrefix: this.uuidPrefix,
        ...(c.netns ? { netns: c.netns } : {}),
        signal: this.#abort.signal,
      })
      try {
        for await (const batch of w) {
          this.#take(batch)
          if (!this.#writer.write(batch)) {
            this.#waits++
            while (!this.#abort.signal.aborted && !(await this.#writer.waitForRoom(200))) this.#logWriterErrors()
          }
          this.#logWriterErrors()
          if (c.reps > 0 && this.#polls >= c.reps) break
        }
      } catch (e) {
        if (!this.#abort.signal.aborted) throw e
      }
    } finally {
      clearInterval(rotation)
      await this.#finish()
    }
  }

  #take(batch: Batch): void {
    this.#polls++
    this.#records += batch.size
    const skipped = batch.stats.skippedPolls
    this.#skipped += skipped
    if (skipped > 0) this.#log.limited('skipped', LOG_EVERY_MS, 'warn', 'poller', `skipped ${skipped} poll(s): the archive writer was behind; their changes are folded into poll ${batch.seq}`)
    for (const w of batch.warnings) this.#log.limited(`warning:${w.code}`, LOG_EVERY_MS, 'warn', 'poller', w.message, { code: w.code })
    if (batch.stats.droppedCloses > 0) this.#log.limited('dropped-closes', LOG_EVERY_MS, 'error', 'poller', `${batch.stats.droppedCloses} close records dropped while polls were skipped`)
  }

  #rotate(): void {
    try {
      this.#writer.rotateOlderThan(this.config.rotateAgeMs)
    } catch (e) {
      this.#log.limited('rotate', LOG_EVERY_MS, 'error', 'archive', `rotation failed: ${(e as Error).message}`)
    }
  }

  #logWriterErrors(): void {
    for (const e of this.#writer.takeErrors()) {
      this.#log.log('error', 'archive', `${e.op} ${e.path}: ${e.message}`, { cause: e.cause, count: e.count })
    }
  }

  async #finish(): Promise<void> {
    try {
      await this.#writer.close(STOP_DEADLINE_MS)
    } finally {
      this.#logWriterErrors()
    }
  }
}
