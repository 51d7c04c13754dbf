/**
 * Decoding of the fixed-size records in which passive RTT samples and per-flow
 * summaries cross from Rust (layout: `crates/tcpinfo-rtt/src/record.rs`; keep in step).
 */
import { RTT_STATS_FIELDS } from '../native.js'

/** Bytes of one sample record. */
export const SAMPLE_RECORD_LEN = 64
/** Bytes of one summary record. */
export const SUMMARY_RECORD_LEN = 80

/** One direction of a TCP connection. */
export interface RttFlow {
  /** 4 or 6. */
  family: 4 | 6
  /** Source address (the host whose round trip a sample measures). */
  src: string
  /** Source port. */
  sport: number
  /** Destination address. */
  dst: string
  /** Destination port. */
  dport: number
}

/**
 * One RTT sample: the time from a packet carrying a TSval passing the capture point to
 * the first packet of `flow` echoing it passing back, i.e. the round trip from the
 * capture point to `flow.src` and back.
 */
export interface RttSample {
  /** Direction of the echoing packet. */
  flow: RttFlow
  /** Capture time of the echoing packet, unix nanoseconds. */
  timeNs: bigint
  /** Round-trip time, nanoseconds. */
  rttNs: number
  /** The echoed timestamp value (TSecr). */
  tsecr: number
}

/** Cumulative statistics of one flow direction (samples where `flow.src` echoed). */
export interface RttFlowSummary {
  /** The flow direction. */
  flow: RttFlow
  /** Samples. */
  count: number
  /** Smallest sample, nanoseconds. */
  minNs: number
  /** Median, nanoseconds (histogram bucket, within about 6%). */
  p50Ns: number
  /** 90th percentile, nanoseconds (as p50). */
  p90Ns: number
  /** Largest sample, nanoseconds. */
  maxNs: number
}

/** Counters of a capture, cumulative (names as in `RTT_STATS_FIELDS`). */
export type RttStats = Record<(typeof RTT_STATS_FIELDS)[number], number>

/** `src:sport+dst:dport`, as pping prints flows (IPv6 in brackets). */
export function flowKey(f: RttFlow): string {
  const a = (ip: string) => (f.family === 6 ? `[${ip}]` : ip)
  return `${a(f.src)}:${f.sport}+${a(f.dst)}:${f.dport}`
}

function ipv6(b: Buffer, at: number): string {
  const groups: number[] = []
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + 2 * i))
  // RFC 5952: the longest run (>= 2) of zero groups becomes '::'.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) [best, bestLen] = [i, j - i]
    i = j
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(':')
  if (best < 0) return hex(groups)
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`
}

function flowAt(b: Buffer, at: number): RttFlow {
  const family = b[at + 36] === 6 ? 6 : 4
  const ip = (o: number) => (family === 6 ? ipv6(b, at + o) : `${b[at + o]}.${b[at + o + 1]}.${b[at + o + 2]}.${b[at + o + 3]}`)
  return { family, src: ip(0), dst: ip(16), sport: b.readUInt16LE(at + 32), dport: b.readUInt16LE(at + 34) }
}

/** Decodes every sample record of `b`. */
export function decodeSamples(b: Buffer): RttSample[] {
  const out: RttSample[] = []
  for (let at = 0; at + SAMPLE_RECORD_LEN <= b.length; at += SAMPLE_RECORD_LEN) {
    out.push({
      flow: flowAt(b, at),
      tsecr: b.readUInt32LE(at + 40),
      timeNs: b.readBigInt64LE(at + 48),
      rttNs: Number(b.readBigUInt64LE(at + 56)),
    })
  }
  return out
}

/** Decodes every summary record of `b`. */
export function decodeSummaries(b: Buffer): RttFlowSummary[] {
  const out: RttFlowSummary[] = []
  for (let at = 0; at + SUMMARY_RECORD_LEN <= b.length; at += SUMMARY_RECORD_LEN) {
    const n = (o: number) => Number(b.readBigUInt64LE(at + o))
    out.push({ flow: flowAt(b, at), count: n(40), minNs: n(48), p50Ns: n(56), p90Ns: n(64), maxNs: n(72) })
  }
  return out
}

/** Names the counters of a native batch. */
export function decodeStats(values: number[]): RttStats {
  return Object.fromEntries(RTT_STATS_FIELDS.map((k, i) => [k, values[i] ?? 0])) as RttStats
}
