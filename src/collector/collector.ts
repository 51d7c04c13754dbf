/**
 * The collector: the composition root of `tcpinfo collect`. It builds the poller and the
 * archive writer from a {@link CollectorConfig}, moves each poll's batch to the writer
 * (one native call per poll; compression and file I/O on the writer's thread), drives
 * rotation by age on a timer, logs what goes wrong (one line per cause, rate-limited),
 * and stops cleanly: every file finished with complete frames.
 *
 * Outputs are sinks (src/sinks/sink.ts): each poll's batch is offered to the archive, the
 * event socket (with `--eventsocket`) and the metrics, in that order; `offer()` never
 * blocks and a failing lossy sink only loses its own data (counted, logged).
 *
 * Backpressure: the archive is the one lossless sink. When the writer's queue is full the
 * collector stops pulling batches until it has room; the poller then skips polls and
 * folds their changes into the next one, keeping close records (its own mechanism), so
 * the archive loses nothing but intermediate states. The other sinks see the same folded
 * batches (the event socket loses no open or close: skipped polls keep them).
 */
import { Registry } from 'prom-client'

import { BatchAnonymizer } from '../archive/anonymizer.js'
import { ArchiveWriter, type ArchiveStats } from '../archive/writer.js'
import type { Batch } from '../api/batch.js'
import { resolveUuidPrefix } from '../api/uuid.js'
import { watch } from '../api/watch.js'
import type { CollectorConfig } from '../config/collector-config.js'
import { uuidPrefixField } from '../config/poll-options.js'
import { checkField } from '../config/schema.js'
import { EVENTSOCKET_MAX_CLIENTS, EventSocketServer, type EventSocketStats } from '../eventsocket/server.js'
import type { Logger } from '../log.js'
import { MetricsSink } from '../metrics/metrics.js'
import { registerPassiveRttMetrics } from '../metrics/passive-rtt-metrics.js'
import { MetricsServer } from '../metrics/server.js'
import { PassiveRttSink } from '../passive-rtt/passive-rtt-sink.js'
import { RttMonitor } from '../rtt/monitor.js'
import { ArchiveSink } from '../sinks/archive-sink.js'
import { KafkaSink } from '../sinks/kafka-sink.js'
import type { Sink, SinkCounters } from '../sinks/sink.js'

/** How often rotation by age is checked: a tenth of the age, at most every second. */
const MAX_ROTATE_CHECK_MS = 1000
/** How long a stop may take to finish the files, ms (the process must be gone within 2 s). */
export const STOP_DEADLINE_MS = 1500
/**
 * How long the end of a `--reps` run may take to finish the files, ms. Nobody is waiting
 * for the process to go, so every queued record is written: on this project's ext4 test
 * machine creating 2,000 files right after 2,000 were deleted takes 2–2.5 s (the inode
 * allocator's `recently_deleted` scan), and a 1.5 s deadline dropped a whole run's records.
 */
export const END_OF_RUN_DEADLINE_MS = 120_000
/** Log lines of one cause at most this often, ms. */
const LOG_EVERY_MS = 60_000
/** Overrunning polls warn past this fraction of all polls, once there are at least LONG_POLLS_WARN_MIN. */
const LONG_POLLS_WARN_FRACTION = 0.1
const LONG_POLLS_WARN_MIN = 50

/** Counters of a running collector. */
export interface CollectorStats {
  polls: number
  skippedPolls: number
  recordsOffered: number
  waitsForWriter: number
  archive: ArchiveStats
  /** Each sink's counters, by name. */
  sinks: Record<string, SinkCounters>
  /** Exceptions thrown by lossy sinks' `offer()` (each lost that sink one batch). */
  sinkErrors: number
  eventsocket?: EventSocketStats
}

/** No poll for this long (or 5 intervals, if longer) makes `/healthz` unhealthy, ms. */
const HEALTHY_POLL_GAP_MS = 5000

/** A running collector. */
export class Collector {
  readonly config: CollectorConfig
  readonly uuidPrefix: string
  readonly #log: Logger
  readonly #writer: ArchiveWriter
  /** Every output, archive first. */
  readonly sinks: readonly Sink[]
  /** The event socket, with `--eventsocket`. */
  readonly eventsocket: EventSocketServer | undefined
  /** The Kafka sink, with `--kafka-brokers`. */
  readonly kafka: KafkaSink | undefined
  /** The passive RTT side file and capture, with `--passive-rtt` (issue 14). */
  readonly passiveRtt: PassiveRttSink | undefined
  /** The metrics sink; its registry is the collector's own (never prom-client's global one). */
  readonly metrics: MetricsSink
  #metricsServer: MetricsServer | undefined
  /** With `--anonymize-ip netblock`: the outputs that send addresses out of the process get an anonymized copy of each batch. */
  readonly #anonymizer: BatchAnonymizer | undefined
  readonly #anonymized: ReadonlySet<Sink>
  #sinkErrors = 0
  readonly #abort = new AbortController()
  readonly #done: Promise<void>
  #polls = 0
  #skipped = 0
  #records = 0
  #waits = 0
  /** The effective poll interval last logged, ms (`--max-cpu` stretches it). */
  #effectiveMs = 0

  /**
   * Starts polling and archiving.
   * @throws {TcpinfoError} `ERR_CONFIG` (e.g. a UUID prefix file whose content is not a
   * valid prefix), or what the archive writer throws for an unusable output directory.
   */
  constructor(config: CollectorConfig, log: Logger) {
    this.config = config
    this.#log = log
    this.uuidPrefix = checkField(uuidPrefixField, resolveUuidPrefix({ uuidPrefixFile: config.uuidPrefixFile }), 'the UUID prefix')
    // First of the outputs: a capture that cannot open (no CAP_NET_RAW) leaves nothing running.
    this.passiveRtt = config.passiveRtt ? passiveRttSinkOf(config, log) : undefined
    this.#writer = new ArchiveWriter({
      output: config.output,
      uuidPrefix: this.uuidPrefix,
      flushIntervalMs: config.flushIntervalMs,
      maxOpenFiles: config.maxOpenFiles,
      anonymize: config.anonymizeIp,
    })
    const archive = new ArchiveSink(this.#writer)
    this.eventsocket = config.eventsocket ? new EventSocketServer({ path: config.eventsocket, mode: config.eventsocketMode, maxClientBytes: config.eventsocketQueueBytes, log }) : undefined
    this.metrics = new MetricsSink({
      registry: new Registry(),
      intervalMs: config.intervalMs,
      ports: config.metricsPorts,
      sources: { sinks: () => this.sinks, archive: () => this.#writer.stats(), eventsocket: () => this.eventsocket?.stats(), limits: () => limitsOf(config) },
    })
    this.kafka = config.kafkaBrokers.length > 0 ? kafkaSinkOf(config, this.uuidPrefix, log) : undefined
    if (this.passiveRtt) registerPassiveRttMetrics(this.metrics.registry, this.passiveRtt)
    this.sinks = [archive, ...(this.eventsocket ? [this.eventsocket] : []), ...(this.kafka ? [this.kafka] : []), ...(this.passiveRtt ? [this.passiveRtt] : []), this.metrics]
    this.#anonymized = new Set<Sink>([this.eventsocket, this.kafka].filter((x): x is EventSocketServer | KafkaSink => x !== undefined))
    this.#anonymizer = config.anonymizeIp !== 'none' && this.#anonymized.size > 0 ? new BatchAnonymizer(config.anonymizeIp) : undefined
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
    const sinks = Object.fromEntries(this.sinks.map((s) => [s.name, s.counters()]))
    const es = this.eventsocket?.stats()
    return { polls: this.#polls, skippedPolls: this.#skipped, recordsOffered: this.#records, waitsForWriter: this.#waits, archive: this.#writer.stats(), sinks, sinkErrors: this.#sinkErrors, ...(es ? { eventsocket: es } : {}) }
  }

  /** The metrics server's bound address (`host:port`), once listening. */
  get metricsAddress(): string | undefined {
    return this.#metricsServer?.address
  }

  /** `undefined` while polls arrive and no sink is stuck; else why not (`/healthz`). */
  unhealthy(): string | undefined {
    const gap = this.metrics.msSinceLastPoll()
    const limit = Math.max(HEALTHY_POLL_GAP_MS, 5 * this.config.intervalMs)
    if (gap > limit) return `no poll for ${Math.round(gap / 1000)} s`
    for (const s of this.sinks) {
      const why = s.unhealthy()
      if (why) return why
    }
    return undefined
  }

  /** Starts the event socket (fatal if it cannot) and the metrics server (logged if it cannot: archiving goes on). */
  async #startOutputs(): Promise<void> {
    const c = this.config
    if (this.eventsocket) {
      await this.eventsocket.listen()
      this.#log.log('info', 'eventsocket', `serving M-Lab v1 events on ${c.eventsocket}`, { mode: `0${c.eventsocketMode.toString(8)}` })
    }
    if (c.prom) {
      try {
        this.#metricsServer = await MetricsServer.listen({ address: c.prom, registry: this.metrics.registry, health: () => this.unhealthy() })
        this.#log.log('info', 'metrics', `serving /metrics and /healthz on ${this.#metricsServer.address}`)
      } catch (e) {
        this.#log.log('error', 'metrics', `no metrics: ${(e as Error).message}`)
      }
    }
  }

  /** Offers a batch to every sink; waits only for a lossless sink without room. */
  async #offer(batch: Batch): Promise<void> {
    let waitOn: Sink | undefined
    let anonymized: Batch | undefined
    for (const sink of this.sinks) {
      if (sink.lossless) {
        if (!sink.offer(batch)) waitOn = sink
        continue
      }
      try {
        if (this.#anonymizer && this.#anonymized.has(sink)) sink.offer((anonymized ??= this.#anonymizer.apply(batch)))
        else sink.offer(batch)
      } catch (e) {
        this.#sinkErrors++
        this.#log.limited(`sink:${sink.name}`, LOG_EVERY_MS, 'error', sink.name, `lost a poll: ${(e as Error).message}`)
      }
    }
    anonymized?.release()
    if (waitOn?.lossless) {
      this.#waits++
      while (!this.#abort.signal.aborted && !(await waitOn.lossless.waitForRoom(200))) this.#logWriterErrors()
    }
  }

  async #run(): Promise<void> {
    const c = this.config
    const rotateEvery = Math.min(MAX_ROTATE_CHECK_MS, Math.max(1, c.rotateAgeMs / 10))
    const rotation = setInterval(() => this.#rotate(), rotateEvery)
    try {
      // Polling starts at once; the outputs bind meanwhile and the first batch waits for them.
      const outputs = this.#startOutputs()
      outputs.catch(() => this.#abort.abort())
      const w = watch({
        intervalMs: c.intervalMs,
        excludeLocal: c.excludeLocal,
        excludeSrcPorts: [...c.excludeSrcPorts],
        excludeDst: [...c.excludeDst],
        uuidPrefix: this.uuidPrefix,
        ...(c.netns ? { netns: c.netns } : {}),
        ...(c.maxCpu !== undefined ? { maxCpu: c.maxCpu } : {}),
        mode: c.pollMode,
        // The metrics read flow events, byte deltas and per-port figures from each poll's stats.
        countBytes: c.prom !== '',
        metricPorts: [...c.metricsPorts],
        signal: this.#abort.signal,
      })
      await outputs
      try {
        for await (const batch of w) {
          this.#take(batch)
          try {
            await this.#offer(batch)
          } finally {
            // Every sink copied what it keeps during offer(): give the parts of a large
            // poll back to the poller now, not at V8's next GC (the 100k first-poll peak).
            batch.release()
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
    if (!batch.more) this.#noteCadence(batch.stats)
  }

  /**
   * Logs the effective interval when it moves by more than a tenth (the CPU budget
   * stretching or relaxing it), and warns (rate-limited) once polls that overran their
   * interval exceed a tenth of all polls: the host has more sockets than the interval allows.
   */
  #noteCadence(s: Batch['stats']): void {
    const interval = this.config.intervalMs
    const ms = s.effectiveIntervalNanos / 1e6
    if (ms > 0 && Math.abs(ms - (this.#effectiveMs || interval)) > 0.1 * (this.#effectiveMs || interval)) {
      this.#log.log('info', 'poller', `effective poll interval ${ms.toFixed(1)} ms (configured ${interval} ms${this.config.maxCpu !== undefined ? `, CPU budget ${this.config.maxCpu} of a core` : ''})`, { effectiveIntervalMs: Number(ms.toFixed(3)) })
      this.#effectiveMs = ms
    }
    if (s.longPolls >= LONG_POLLS_WARN_MIN && s.longPolls > this.#polls * LONG_POLLS_WARN_FRACTION) {
      this.#log.limited('long-polls', LOG_EVERY_MS, 'warn', 'poller', `${s.longPolls} of ${this.#polls} polls took longer than the ${interval} ms interval: raise --interval or set --max-cpu`, { longPolls: s.longPolls, polls: this.#polls })
    }
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
    const others = this.sinks.filter((s) => !s.lossless)
    const closing = Promise.allSettled([...others.map((s) => s.close(STOP_DEADLINE_MS / 3)), this.#metricsServer?.close()])
    try {
      await this.#writer.close(this.#abort.signal.aborted ? STOP_DEADLINE_MS : END_OF_RUN_DEADLINE_MS)
    } finally {
      this.#logWriterErrors()
      await closing
    }
  }
}

/** The Kafka sink of `--kafka-*` (issue 12). */
function kafkaSinkOf(c: CollectorConfig, uuidPrefix: string, log: Logger): KafkaSink {
  const sample = c.kafkaSample === 'all' ? { every: 1 } : c.kafkaSample === 'opens-closes' ? ('opens-closes' as const) : { every: Number(c.kafkaSample) }
  const tlsFiles = { caFile: c.kafkaTlsCa || undefined, certFile: c.kafkaTlsCert || undefined, keyFile: c.kafkaTlsKey || undefined }
  const tls = c.kafkaTls || tlsFiles.caFile || tlsFiles.certFile ? tlsFiles : undefined
  const sasl = c.kafkaSaslMechanism ? { mechanism: c.kafkaSaslMechanism, username: c.kafkaSaslUsername, password: c.kafkaSaslPassword } : undefined
  return new KafkaSink({ brokers: c.kafkaBrokers, topic: c.kafkaTopic, uuidPrefix, netns: c.netns, compression: c.kafkaCompression, format: c.kafkaFormat, bufferBytes: c.kafkaBufferBytes, batchBytes: c.kafkaBatchBytes, lingerMs: c.kafkaLingerMs, sample, tls, sasl, log })
}

/** The collector's resource bounds, as `tcpinfo_limit{resource}` exposes them (docs/RELIABILITY.md, "Caps"). */
function limitsOf(c: CollectorConfig): Record<string, number> {
  return {
    open_files: c.maxOpenFiles,
    ...(c.eventsocket ? { eventsocket_clients: EVENTSOCKET_MAX_CLIENTS, eventsocket_client_bytes: c.eventsocketQueueBytes } : {}),
    ...(c.kafkaBrokers.length > 0 ? { kafka_buffer_bytes: c.kafkaBufferBytes } : {}),
  }
}

/** The passive RTT capture of `--passive-rtt IF` (issue 14), in the watched namespace unless that is `all`. */
function passiveRttSinkOf(c: CollectorConfig, log: Logger): PassiveRttSink {
  const monitor = new RttMonitor({
    interface: c.passiveRtt,
    ...(c.netns && c.netns !== 'all' ? { netns: c.netns } : {}),
    maxPrefixes: c.passiveRttMaxPrefixes,
    v4Prefix: c.passiveRttV4Prefix,
    v6Prefix: c.passiveRttV6Prefix,
  })
  log.log('info', 'passive-rtt', `measuring RTTs passively on ${c.passiveRtt}`)
  return new PassiveRttSink(monitor, c.output, log, c.anonymizeIp !== 'none' ? new BatchAnonymizer(c.anonymizeIp) : undefined)
}
