/**
 * The metrics of `--passive-rtt IF`, registered in the collector's registry beside
 * {@link MetricsSink}'s. Everything is read at scrape time from the capture's native
 * tables and the side file's counters; nothing is per flow:
 *
 * - `tcpinfo_passive_rtt_seconds{prefix}`: RTT samples by the echoing host's prefix (/24,
 *   /48), at most `--passive-rtt-max-prefixes` label values; the rest under
 *   `prefix="other"`, counted by `tcpinfo_passive_rtt_prefix_overflow_total`;
 * - `tcpinfo_passive_rtt_kernel_ratio`: per closed connection, passive min / kernel
 *   `tcpi_min_rtt` (1 = agreement);
 * - counters of the capture (packets, ring drops, samples, skipped packets, full tables)
 *   and of the side file (connections matched or not, lines dropped).
 */
import { Counter, Gauge, type Metric, type Registry } from 'prom-client'

import { RATIO_BOUNDS, type PassiveRttSink } from '../passive-rtt/passive-rtt-sink.js'

interface Row {
  labels: Record<string, string>
  buckets: number[]
  sum: number
  count: number
}

/** A histogram whose counts live elsewhere (prom-client's Histogram can only observe). */
function externalHistogram(registry: Registry, name: string, help: string, read: () => { bounds: number[]; rows: Row[] }): void {
  const get = () => {
    const { bounds, rows } = read()
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = []
    for (const r of rows) {
      let cum = 0
      bounds.forEach((le, i) => {
        cum += r.buckets[i] ?? 0
        values.push({ metricName: `${name}_bucket`, labels: { ...r.labels, le }, value: cum })
      })
      cum += r.buckets[bounds.length] ?? 0
      values.push({ metricName: `${name}_bucket`, labels: { ...r.labels, le: '+Inf' }, value: cum })
      values.push({ metricName: `${name}_sum`, labels: r.labels, value: r.sum })
      values.push({ metricName: `${name}_count`, labels: r.labels, value: r.count })
    }
    return { name, help, type: 'histogram', values, aggregator: 'sum' }
  }
  registry.registerMetric({ name, help, type: 'histogram', aggregator: 'sum', get, reset() {} } as unknown as Metric)
}

/** Registers the passive RTT metrics of `sink` in `registry`. */
export function registerPassiveRttMetrics(registry: Registry, sink: PassiveRttSink): void {
  const registers = [registry]
  externalHistogram(registry, 'tcpinfo_passive_rtt_seconds', 'Passive RTT samples (TCP timestamps) by the prefix of the echoing host; prefix="other" beyond the label bound.', () => {
    const h = sink.monitor.histograms()
    return {
      bounds: h.boundsNs.map((b) => b / 1e9),
      rows: h.rows.filter((r) => r.prefix !== 'other' || r.count > 0).map((r) => ({ labels: { prefix: r.prefix }, buckets: r.buckets, sum: r.sumNs / 1e9, count: r.count })),
    }
  })
  externalHistogram(registry, 'tcpinfo_passive_rtt_kernel_ratio', "Per closed connection with samples: passive minimum RTT / the kernel's tcpi_min_rtt.", () => {
    const c = sink.passiveCounters()
    return { bounds: RATIO_BOUNDS, rows: [{ labels: {}, buckets: c.ratio, sum: c.ratioSum, count: c.ratio.reduce((a, b) => a + b, 0) }] }
  })
  const counter = (name: string, help: string, value: () => number): void => {
    new Counter({ name, help, registers, collect() { this.reset(); this.inc(value()) } })
  }
  const stats = () => sink.monitor.stats()
  counter('tcpinfo_passive_rtt_packets_total', 'Packets the passive RTT ring received.', () => stats().ringPackets)
  counter('tcpinfo_passive_rtt_ring_drops_total', 'Packets the kernel dropped because the passive RTT ring was full.', () => stats().ringDrops)
  counter('tcpinfo_passive_rtt_samples_total', 'Passive RTT samples taken.', () => stats().samples)
  counter('tcpinfo_passive_rtt_local_samples_total', "Samples echoed by one of the namespace's own addresses (the local stack's delay; not in the histogram).", () => stats().localSamples)
  counter('tcpinfo_passive_rtt_prefix_overflow_total', 'Samples under prefix="other": their prefix found the label set full.', () => stats().prefixOverflow)
  new Counter({
    name: 'tcpinfo_passive_rtt_skipped_packets_total',
    help: 'Captured packets skipped, by reason.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset()
      const s = stats()
      this.inc({ reason: 'truncated' }, s.truncated)
      this.inc({ reason: 'malformed' }, s.malformed)
    },
  })
  new Counter({
    name: 'tcpinfo_passive_rtt_table_full_total',
    help: 'Flows or TSvals not tracked because their bounded table was full.',
    labelNames: ['table'],
    registers,
    collect() {
      this.reset()
      const s = stats()
      this.inc({ table: 'flows' }, s.flowsFull)
      this.inc({ table: 'tsvals' }, s.tsvalsFull)
    },
  })
  new Counter({
    name: 'tcpinfo_passive_rtt_connections_total',
    help: 'Closed connections looked up in the capture, by whether it had samples of them.',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset()
      const c = sink.passiveCounters()
      this.inc({ result: 'matched' }, c.matched)
      this.inc({ result: 'unmatched' }, c.looked - c.matched)
    },
  })
  new Gauge({ name: 'tcpinfo_passive_rtt_flows', help: 'Flow directions the capture tracks now (a closed connection is forgotten once reported).', registers, collect() { this.set(stats().flows) } })
  counter('tcpinfo_passive_rtt_dropped_total', 'Closed connections whose side-file line was dropped (queue or write buffer full).', () => sink.passiveCounters().dropped)
}
