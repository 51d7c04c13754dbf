/**
 * Archives to per-connection time series and a summary (duration, bytes each way,
 * throughput, RTTs, retransmissions, final state, limit verdict). Series values come from
 * one native call per batch (`nativeArchiveSeries`), not from per-record objects.
 */
import type { Buffer } from 'node:buffer'

import { readArchive, type ArchiveReader, type ReadArchiveOptions } from '../archive/read-archive.js'
import type { ArchiveInput } from '../archive/sources.js'
import { callNative, native } from '../native.js'
import { verdictOf, type Verdict } from './verdict.js'

/** The series read for each record, in this order. */
export const SERIES_FIELDS = [
  'time',
  'state',
  'rtt',
  'minRtt',
  'sndCwnd',
  'sndSsthresh',
  'deliveryRate',
  'pacingRate',
  'bytesAcked',
  'bytesReceived',
  'totalRetrans',
  'busyTime',
  'rwndLimited',
  'sndbufLimited',
  'deliveryRateAppLimited',
] as const

export type SeriesField = (typeof SERIES_FIELDS)[number]

const STATE_NAMES = ['UNKNOWN', 'ESTAB', 'SYN-SENT', 'SYN-RECV', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'UNCONN', 'CLOSE-WAIT', 'LAST-ACK', 'LISTEN', 'CLOSING', 'NEW-SYN-RECV']

/** One connection of the archives: its series and summary. */
export interface AnalyzedConnection {
  uuid: string
  /** `ip:port` of both ends, from the first record. */
  local: string
  remote: string
  /** Values per field, one per record, `NaN` where absent. */
  series: Record<SeriesField, number[]>
  summary: ConnectionSummary
}

/** The summary table's row. Times in seconds or ms as named; bytes; rates in bit/s. */
export interface ConnectionSummary {
  records: number
  startMs: number
  durationS: number
  bytesOut: number
  bytesIn: number
  throughputBps: number
  minRttMs: number
  medianRttMs: number
  retransmits: number
  finalState: string
  verdict: Verdict
}

function ip(raw: Buffer, off: number, family: number): string {
  if (family === 2) return `${raw[off]}.${raw[off + 1]}.${raw[off + 2]}.${raw[off + 3]}`
  const words: string[] = []
  for (let i = 0; i < 16; i += 2) words.push(raw.readUInt16BE(off + i).toString(16))
  if (words.slice(0, 5).every((w) => w === '0') && words[5] === 'ffff') return `${raw[off + 12]}.${raw[off + 13]}.${raw[off + 14]}.${raw[off + 15]}`
  return words.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')
}

function endpoints(raw: Buffer | null): { local: string; remote: string } {
  if (!raw || raw.length < 72) return { local: '?', remote: '?' }
  const fam = raw[0] as number
  const v6 = (s: string): string => (s.includes(':') ? `[${s}]` : s)
  return { local: `${v6(ip(raw, 8, fam))}:${raw.readUInt16BE(4)}`, remote: `${v6(ip(raw, 24, fam))}:${raw.readUInt16BE(6)}` }
}

function firstFinite(a: number[]): number {
  for (const v of a) if (Number.isFinite(v)) return v
  return Number.NaN
}
function lastFinite(a: number[]): number {
  for (let i = a.length - 1; i >= 0; i--) if (Number.isFinite(a[i] as number)) return a[i] as number
  return Number.NaN
}
const delta = (a: number[]): number => lastFinite(a) - firstFinite(a)

function summarize(s: Record<SeriesField, number[]>): ConnectionSummary {
  const t = s.time
  const startMs = firstFinite(t)
  const durationS = Math.max(0, (lastFinite(t) - startMs) / 1000) || 0
  const bytesOut = lastFinite(s.bytesAcked) || 0
  const bytesIn = lastFinite(s.bytesReceived) || 0
  const rtts = s.rtt.filter(Number.isFinite).sort((a, b) => a - b)
  const minRtts = s.minRtt.filter((v) => Number.isFinite(v) && v > 0 && v < 0xffffffff)
  const app = s.deliveryRateAppLimited.filter(Number.isFinite)
  const verdict = verdictOf({
    elapsedUs: durationS * 1e6,
    busyUs: delta(s.busyTime),
    rwndUs: delta(s.rwndLimited),
    sndbufUs: delta(s.sndbufLimited),
    bytesOut: delta(s.bytesAcked) || 0,
    bytesIn: delta(s.bytesReceived) || 0,
    appLimitedSamples: app.length ? app.reduce((a, b) => a + b, 0) / app.length : Number.NaN,
  })
  return {
    records: t.length,
    startMs,
    durationS,
    bytesOut,
    bytesIn,
    throughputBps: durationS > 0 ? ((Math.max(delta(s.bytesAcked) || 0, delta(s.bytesReceived) || 0) * 8) / durationS) : 0,
    minRttMs: minRtts.length ? minRtts.reduce((a, b) => Math.min(a, b)) / 1000 : Number.NaN,
    medianRttMs: rtts.length ? (rtts[rtts.length >> 1] as number) / 1000 : Number.NaN,
    retransmits: lastFinite(s.totalRetrans) || 0,
    finalState: STATE_NAMES[lastFinite(s.state)] ?? 'UNKNOWN',
    verdict,
  }
}

/**
 * Reads archives and groups their records by connection (UUID), in order of first record.
 * @example
 * const { connections } = await analyzeArchive('2024/05/01')
 * for (const c of connections) console.log(c.uuid, c.summary.verdict.verdict, c.summary.throughputBps)
 * @throws {ArchiveReadError} as {@link readArchive}, unless `onError: 'skip'`.
 */
export async function analyzeArchive(input: ArchiveInput | readonly ArchiveInput[], options: ReadArchiveOptions = {}): Promise<{ connections: AnalyzedConnection[]; reader: ArchiveReader }> {
  const reader = readArchive(input, options)
  const byUuid = new Map<string, AnalyzedConnection>()
  const fields = [...SERIES_FIELDS]
  const n = native()
  for await (const b of reader.batches()) {
    const values = callNative(() => n.nativeArchiveSeries(b.index, b.payloads, b.timeBytes, fields))
    const conns = b.connections
    const count = conns.length
    for (let i = 0; i < count; i++) {
      const c = conns[i]
      if (!c) continue
      // A file's UUID names one connection; records of another cookie under it (concatenated
      // or synthetic files) are kept apart, named by UUID and cookie.
      const cookie = c.cookie.toString(16).toUpperCase().padStart(16, '0')
      const fileUuid = c.uuid
      const uuid = fileUuid.endsWith(cookie) ? fileUuid : `${fileUuid}_${cookie}`
      let a = byUuid.get(uuid)
      if (!a) {
        const series = Object.fromEntries(SERIES_FIELDS.map((f) => [f, [] as number[]])) as Record<SeriesField, number[]>
        a = { uuid, ...endpoints(c.raw), series, summary: undefined as unknown as ConnectionSummary }
        byUuid.set(uuid, a)
      }
      for (let f = 0; f < SERIES_FIELDS.length; f++) a.series[SERIES_FIELDS[f] as SeriesField].push(values[f * count + i] as number)
    }
  }
  const connections = [...byUuid.values()]
  for (const c of connections) c.summary = summarize(c.series)
  return { connections, reader }
}
