/**
 * Prometheus metrics as a sink. M-Lab tcp-info's names, types and labels (so their
 * dashboards work) plus first-class metrics of what M-Lab keeps in logs. Everything is
 * registered in the registry it is given (never prom-client's global one, so embedding
 * works). `offer()` runs once per poll and reads a few numbers: the poll's statistics,
 * where the poller thread (crates/tcpinfo-core/src/poll/accounting.rs) has already counted
 * flow events, the bytes each connection sent and received since its previous report, and
 * the per-port figures. Nothing here walks the records. Everything else is read from the
 * sinks' counters at scrape time. The poller must run with `countBytes` (and `metricPorts`
 * set to {@link MetricsOptions.ports}), as the collector does.
 *
 * The send and receive rates follow M-Lab: once per second (of poll time) the bits
 * sent/received in that second are observed, so `_sum` is the total bits and `_count`
 * the seconds. Bytes are summed from per-connection deltas, including the final counters
 * of closed connections, so the sum never goes backwards (M-Lab's works around that).
 * Connections present at the first poll start from their counters then.
 *
 * `af` labels: the poller reports its dumps as a whole, so the syscall time and
 * connection count histograms carry `af="all"`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

import type { Batch } from '../api/batch.js'
import { MAX_METRIC_PORTS } from '../config/poll-options.js'
import type { ArchiveErrorCause, ArchiveStats } from '../archive/writer.js'
import type { EventSocketStats } from '../eventsocket/server.js'
import type { Sink, SinkCounters } from '../sinks/sink.js'

/** At most this many ports get per-port metrics (the core's `MAX_METRIC_PORTS`). */
export { MAX_METRIC_PORTS }


const COUNT_BUCKETS = [
  1, 2, 3, 4, 5, 6, 8, 10, 12.5, 16, 20, 25, 32, 40, 50, 63, 79, 100, 125, 160, 200, 250, 320, 400, 500, 630, 790, 1000, 1250, 1600, 2000, 2500, 3200, 4000, 5000, 6300,
  7900, 10000, 12500, 16000, 20000, 25000, 32000, 40000, 50000, 63000, 79000, 10000000,
]
const RATE_BUCKETS = [
  0, 1, 10, 100, 1000, 1580, 2510, 3980, 6310, 10000, 15800, 25100, 39800, 63100, 100000, 158000, 251000, 398000, 631000, 1000000, 1580000, 2510000, 3980000, 6310000,
  10000000, 15800000, 25100000, 39800000, 63100000, 100000000, 158000000, 251000000, 398000000, 631000000, 1000000000, 1260000000, 1580000000, 2000000000, 2510000000,
  3160000000, 3980000000, 5010000000, 6310000000, 7940000000, 10000000000,
]
const SYSCALL_BUCKETS = [0.001, 0.00125, 0.0016, 0.002, 0.0025, 0.0032, 0.004, 0.005, 0.0063, 0.0079, 0.01, 0.0125, 0.016, 0.02, 0.025, 0.032, 0.04, 0.05, 0.063, 0.079, 0.1, 0.125, 0.16, 0.2]
const INTERVAL_BUCKETS = Array.from({ length: 30 }, (_, i) => i / 1000)

/** Where the metrics read the other outputs' counters at scrape time. */
export interface MetricsSources {
  /** The sinks (for their drop counters); called at scrape time. */
  sinks?: () => readonly Sink[]
  archive?: () => ArchiveStats | undefined
  eventsocket?: () => EventSocketStats | undefined
  /** The configured bounds (`tcpinfo_limit{resource}`), by resource name. */
  limits?: () => Readonly<Record<string, number>>
}

/** Options of {@link MetricsSink}. */
export interface MetricsOptions {
  /** Registry to register in (default: a new one). */
  registry?: Registry
  /** Poll interval, ms (a poll whose dumps took longer overran it). */
  intervalMs: number
  /** Local ports with per-port metrics (at most {@link MAX_METRIC_PORTS}). */
  ports?: readonly number[]
  /** Include prom-client's process metrics (default true). */
  processMetrics?: boolean
  sources?: MetricsSources
}

export class MetricsSink implements Sink {
  readonly name = 'metrics'
  readonly registry: Registry
  readonly #intervalNs: number
  readonly #ports: readonly number[]
  readonly #sources: MetricsSources
  #offered = 0
  #lastTs = 0n
  #lastPollAt = 0
  readonly #startedAt = Date.now()
  /** Configured port → its position in the per-port arrays. */
  readonly #portSlot: ReadonlyMap<number, number>
  readonly #portConns: number[]
  readonly #portSent: number[]
  readonly #portRecv: number[]
  #windowSec = -1
  #winSent = 0
  #winRecv = 0
  /** Totals, read at scrape time. */
  readonly #t = { polls: 0, skipped: 0, overran: 0, incomplete: 0, overruns: 0, malformed: 0, droppedCloses: 0, lateEvents: 0, backwards: 0, opens: 0, closes: 0, tracked: 0, bytesSent: 0, bytesRecv: 0 }
  readonly #syscall: Histogram<'af'>
  readonly #interval: Histogram
  readonly #conns: Histogram<'af'>
  readonly #cache: Histogram
  readonly #sendRate: Histogram
  readonly #recvRate: Histogram

  constructor(options: MetricsOptions) {
    const ports = options.ports ?? []
    if (ports.length > MAX_METRIC_PORTS) throw new RangeError(`at most ${MAX_METRIC_PORTS} metric ports, got ${ports.length}`)
    this.registry = options.registry ?? new Registry()
    this.#intervalNs = options.intervalMs * 1e6
    this.#ports = [...ports]
    this.#portSlot = new Map(ports.map((p, i) => [p, i]))
    this.#portConns = ports.map(() => 0)
    this.#portSent = ports.map(() => 0)
    this.#portRecv = ports.map(() => 0)
    this.#sources = options.sources ?? {}
    const registers = [this.registry]
    const r = { registers }
    this.#syscall = new Histogram({ name: 'tcpinfo_syscall_time_histogram', help: 'netlink syscall latency distribution (seconds)', labelNames: ['af'], buckets: SYSCALL_BUCKETS, ...r })
    this.#interval = new Histogram({ name: 'tcpinfo_polling_interval_histogram', help: 'netlink polling interval distribution (seconds)', buckets: INTERVAL_BUCKETS, ...r })
    this.#conns = new Histogram({ name: 'tcpinfo_connection_count_histogram', help: 'connection count histogram', labelNames: ['af'], buckets: COUNT_BUCKETS, ...r })
    this.#cache = new Histogram({ name: 'tcpinfo_cache_count_histogram', help: 'cache connection count histogram', buckets: COUNT_BUCKETS, ...r })
    this.#sendRate = new Histogram({ name: 'tcpinfo_send_rate_histogram', help: 'send rate histogram (bits sent per second, observed once per second)', buckets: RATE_BUCKETS, ...r })
    this.#recvRate = new Histogram({ name: 'tcpinfo_receive_rate_histogram', help: 'receive rate histogram (bits received per second, observed once per second)', buckets: RATE_BUCKETS, ...r })
    this.#registerPulled(registers)
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry })
  }

  /** Counters and gauges whose values are read at scrape time. */
  #registerPulled(registers: Registry[]): void {
    const t = this.#t
    const src = this.#sources
    const counter = (name: string, help: string, value: () => number): void => {
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(value()) } })
    }
    const gauge = (name: string, help: string, value: () => number): void => {
      new Gauge({ name, help, registers, collect() { this.set(value()) } })
    }
    const archive = (): ArchiveStats | undefined => src.archive?.()
    const events = (): EventSocketStats | undefined => src.eventsocket?.()
    const errorTypes: Record<string, () => number> = {
      malformed_message: () => t.malformed,
      destroy_overrun: () => t.overruns,
      incomplete_dump: () => t.incomplete,
      counter_backwards: () => t.backwards,
    }
    new Counter({
      name: 'tcpinfo_error_total',
      help: 'The total number of errors encountered.',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset()
        for (const [type, v] of Object.entries(errorTypes)) this.inc({ type }, v())
        const a = archive()
        if (a) for (const [cause, n] of Object.entries(a.writeErrors)) this.inc({ type: `write_${cause}` }, n)
      },
    })
    counter('tcpinfo_new_file_total', 'Number of files created.', () => archive()?.filesOpened ?? 0)
    counter('tcpinfo_snapshot_total', 'Number of snapshots taken (records archived).', () => archive()?.recordsWritten ?? 0)
    new Counter({
      name: 'tcpinfo_flow_events_total',
      help: 'Number of flow events by event type.',
      labelNames: ['event'],
      registers,
      collect() {
        this.reset()
        this.inc({ event: 'open' }, t.opens)
        this.inc({ event: 'close' }, t.closes)
      },
    })
    new Counter({
      name: 'tcpinfo_write_errors_total',
      help: 'Archive file-system errors by cause.',
      labelNames: ['cause'],
      registers,
      collect() {
        this.reset()
        const a = archive()
        const causes: ArchiveErrorCause[] = ['no_space', 'quota', 'permission', 'read_only', 'too_many_files', 'exists', 'other']
        for (const cause of causes) this.inc({ cause }, a?.writeErrors[cause] ?? 0)
      },
    })
    const perSink = (name: string, help: string, pick: (c: SinkCounters) => number, kind: 'counter' | 'gauge'): void => {
      const collect = function (this: Counter<'sink'> | Gauge<'sink'>): void {
        this.reset()
        for (const s of src.sinks?.() ?? []) {
          const v = pick(s.counters())
          if (this instanceof Counter) this.inc({ sink: s.name }, v)
          else this.set({ sink: s.name }, v)
        }
      }
      if (kind === 'counter') new Counter({ name, help, labelNames: ['sink'], registers, collect })
      else new Gauge({ name, help, labelNames: ['sink'], registers, collect })
    }
    perSink('tcpinfo_sink_dropped_records_total', 'Records (events for the event socket) a sink lost.', (c) => c.droppedRecords, 'counter')
    perSink('tcpinfo_sink_dropped_batches_total', 'Polls a sink dropped whole.', (c) => c.droppedBatches, 'counter')
    perSink('tcpinfo_sink_queued_bytes', 'Bytes queued in front of a sink.', (c) => c.queuedBytes, 'gauge')
    perSink('tcpinfo_sink_queued_items', 'Items (polls, records or events) queued in front of a sink.', (c) => c.queuedItems, 'gauge')
    new Gauge({
      name: 'tcpinfo_limit',
      help: 'Configured bound of a resource (docs/RELIABILITY.md, "Caps"); compare with the matching usage metric.',
      labelNames: ['resource'],
      registers,
      collect() {
        this.reset()
        for (const [resource, v] of Object.entries(src.limits?.() ?? {})) this.set({ resource }, v)
      },
    })
    counter('tcpinfo_eventsocket_clients_refused_total', 'Event-socket clients refused beyond the client cap.', () => events()?.clientsRefused ?? 0)
    gauge('tcpinfo_open_files', 'Archive files open now.', () => archive()?.openFiles ?? 0)
    counter('tcpinfo_archive_bytes_written_total', 'Compressed bytes written to archive files.', () => archive()?.bytesCompressed ?? 0)
    gauge('tcpinfo_tracked_connections', 'Connections tracked after the last poll.', () => t.tracked)
    counter('tcpinfo_polls_total', 'Polls completed.', () => t.polls)
    counter('tcpinfo_polls_skipped_total', 'Polls skipped because a consumer was behind (their changes folded into the next).', () => t.skipped)
    counter('tcpinfo_polls_overrun_total', 'Polls whose dumps took longer than the poll interval.', () => t.overran)
    counter('tcpinfo_incomplete_dumps_total', 'Polls whose dumps were incomplete (no close inferred).', () => t.incomplete)
    counter('tcpinfo_destroy_overruns_total', 'Kernel destroy-event buffer overruns (close events lost).', () => t.overruns)
    counter('tcpinfo_malformed_messages_total', 'Malformed netlink messages skipped.', () => t.malformed)
    counter('tcpinfo_dropped_closes_total', 'Close records dropped while polls were skipped.', () => t.droppedCloses)
    counter('tcpinfo_late_destroy_events_total', 'Destroy events that came after the sweep had closed their connection (close grace exceeded): their final counters are not reported.', () => t.lateEvents)
    counter('tcpinfo_bytes_sent_total', 'Bytes acknowledged by peers over all non-excluded connections (per-connection deltas).', () => t.bytesSent)
    counter('tcpinfo_bytes_received_total', 'Bytes received over all non-excluded connections (per-connection deltas).', () => t.bytesRecv)
    gauge('tcpinfo_eventsocket_clients', 'Event-socket clients connected.', () => events()?.clients ?? 0)
    counter('tcpinfo_eventsocket_clients_dropped_total', 'Event-socket clients dropped because they stopped reading.', () => events()?.clientsDropped ?? 0)
    counter('tcpinfo_eventsocket_events_total', 'Event lines sent to event-socket clients.', () => events()?.eventsSent ?? 0)
    if (this.#ports.length > 0) {
      const ports = this.#ports
      const portGauge = (name: string, help: string, m: readonly number[], kind: 'counter' | 'gauge'): void => {
        const collect = function (this: Counter<'port'> | Gauge<'port'>): void {
          this.reset()
          ports.forEach((p, i) => {
            if (this instanceof Counter) this.inc({ port: String(p) }, m[i] ?? 0)
            else this.set({ port: String(p) }, m[i] ?? 0)
          })
        }
        if (kind === 'counter') new Counter({ name, help, labelNames: ['port'], registers, collect })
        else new Gauge({ name, help, labelNames: ['port'], registers, collect })
      }
      portGauge('tcpinfo_port_connections', 'Connections on a configured local port.', this.#portConns, 'gauge')
      portGauge('tcpinfo_port_bytes_sent_total', 'Bytes acknowledged on connections of a configured local port.', this.#portSent, 'counter')
      portGauge('tcpinfo_port_bytes_received_total', 'Bytes received on connections of a configured local port.', this.#portRecv, 'counter')
    }
  }

  offer(batch: Batch): boolean {
    this.#offered++
    this.#lastPollAt = Date.now()
    // A poll too large for one batch comes in parts: only the last carries its
    // completeness, stats and accounting (counting the others made each a poll and an
    // incomplete dump).
    if (batch.more) return true
    const t = this.#t
    const s = batch.stats
    t.polls++
    t.skipped += s.skippedPolls
    t.overruns += s.destroyOverruns
    t.malformed += s.malformed
    t.droppedCloses += s.droppedCloses
    t.lateEvents += s.lateDestroyEvents
    t.tracked = s.tracked
    if (!batch.complete) t.incomplete++
    if (s.dumpNanos > this.#intervalNs) t.overran++
    this.#syscall.observe({ af: 'all' }, s.dumpNanos / 1e9)
    this.#conns.observe({ af: 'all' }, batch.socketsSeen)
    this.#cache.observe(s.tracked)
    if (this.#lastTs !== 0n) this.#interval.observe(Number(batch.timestampNs - this.#lastTs) / 1e9)
    this.#lastTs = batch.timestampNs
    // A poll of a new second first closes the previous second's window.
    const sec = Number(batch.timestampNs / 1_000_000_000n)
    if (this.#windowSec < 0) this.#windowSec = sec
    else if (sec > this.#windowSec) this.#report(sec)
    this.#account(batch)
    return true
  }

  /** Observes the bits of the finished one-second window. */
  #report(sec: number): void {
    this.#sendRate.observe(this.#winSent * 8)
    this.#recvRate.observe(this.#winRecv * 8)
    this.#winSent = 0
    this.#winRecv = 0
    this.#windowSec = sec
  }

  /** Adds the poller's accounting of this poll (flow events, byte deltas, per-port figures). */
  #account(batch: Batch): void {
    const t = this.#t
    const s = batch.stats
    t.opens += s.flowOpens
    t.closes += s.flowCloses
    t.backwards += s.countersBackwards
    const sent = s.bytesSent
    const recv = s.bytesReceived
    this.#winSent += sent
    this.#winRecv += recv
    t.bytesSent += sent
    t.bytesRecv += recv
    for (const p of batch.portStats) {
      const i = this.#portSlot.get(p.port)
      if (i === undefined) continue
      this.#portConns[i] = (this.#portConns[i] ?? 0) + p.opened - p.closed
      this.#portSent[i] = (this.#portSent[i] ?? 0) + p.bytesSent
      this.#portRecv[i] = (this.#portRecv[i] ?? 0) + p.bytesReceived
    }
  }

  /** Milliseconds since the last poll (since start before the first). */
  msSinceLastPoll(): number {
    return Date.now() - (this.#lastPollAt || this.#startedAt)
  }

  /** Polls seen. */
  get polls(): number {
    return this.#t.polls
  }

  counters(): SinkCounters {
    return { offered: this.#offered, droppedBatches: 0, droppedRecords: 0, queuedItems: 0, queuedBytes: 0 }
  }

  unhealthy(): string | undefined {
    return undefined
  }

  /** Observes the last partial rate window (so `_sum` holds every byte). */
  async close(): Promise<void> {
    if (this.#winSent || this.#winRecv) this.#report(this.#windowSec + 1)
  }
}
