/**
 * The collector's passive RTT monitor (`tcpinfo collect --passive-rtt IF`): a live
 * capture on its own native thread that keeps, bounded, each flow's RTT statistics and
 * histograms by remote prefix; this wrapper reads them on demand (lookups of closed
 * connections, scrapes). Nothing here runs per packet in JS.
 */
import { callNative, native, RTT_MONITOR_STATS_FIELDS, type NativeRttMonitor } from '../native.js'

/** Options of {@link RttMonitor}. */
export interface RttMonitorOptions {
  /** Interface to capture on (`'any'`: all). Needs `CAP_NET_RAW`. */
  interface: string
  /** Network namespace to capture in (a path such as /var/run/netns/NAME). */
  netns?: string
  /** Most prefixes with a histogram row of their own (default 256); others share `other`. */
  maxPrefixes?: number
  /** IPv4 prefix length of the rows (default 24). */
  v4Prefix?: number
  /** IPv6 prefix length of the rows (default 48). */
  v6Prefix?: number
  /** Most flow directions tracked (default 10000). */
  maxFlows?: number
}

/** A flow's passive RTT statistics. */
export interface PassiveRtt {
  samples: number
  minNs: number
  maxNs: number
}

/** One histogram row: non-cumulative counts per bucket (the last is +Inf), sum and count. */
export interface RttHistogramRow {
  /** `10.0.1.0/24`, `2001:db8:aa::/48`, or `other` (prefixes beyond the bound). */
  prefix: string
  buckets: number[]
  sumNs: number
  count: number
}

/** The histograms at one moment. */
export interface RttHistograms {
  /** Bucket upper bounds, ns (a +Inf bucket follows). */
  boundsNs: number[]
  rows: RttHistogramRow[]
}

/** Counters of the monitor. */
export type RttMonitorStats = Record<(typeof RTT_MONITOR_STATS_FIELDS)[number], number>

/** Bytes of one lookup id: the head of an `inet_diag_msg` (family … `idiag_dst`). */
export const LOOKUP_ID_LEN = 40
const ANSWER_LEN = 24

export class RttMonitor {
  #native: NativeRttMonitor | undefined

  /**
   * Opens the capture.
   * @throws {TcpinfoError} `ERR_PERMISSION` without `CAP_NET_RAW`, `ERR_SOCKET` for an
   * unknown interface, `ERR_NETNS`, `ERR_CONFIG`.
   */
  constructor(options: RttMonitorOptions) {
    this.#native = callNative(() => new (native().NativeRttMonitor)(options))
  }

  /**
   * The passive RTT toward the peer of each local socket whose `inet_diag_msg` head
   * ({@link LOOKUP_ID_LEN} bytes each) is in `ids`; `undefined` where no sample was taken.
   */
  lookup(ids: Buffer): (PassiveRtt | undefined)[] {
    const out = this.#native ? callNative(() => this.#native!.lookup(ids)) : Buffer.alloc((ids.length / LOOKUP_ID_LEN) * ANSWER_LEN)
    const res: (PassiveRtt | undefined)[] = []
    for (let at = 0; at + ANSWER_LEN <= out.length; at += ANSWER_LEN) {
      const samples = Number(out.readBigUInt64LE(at))
      res.push(samples > 0 ? { samples, minNs: Number(out.readBigUInt64LE(at + 8)), maxNs: Number(out.readBigUInt64LE(at + 16)) } : undefined)
    }
    return res
  }

  /** The histograms now (a copy). */
  histograms(): RttHistograms {
    const h = this.#native?.histograms()
    if (!h) return { boundsNs: [], rows: [] }
    const width = h.boundsNs.length + 3
    const rows: RttHistogramRow[] = []
    for (let r = 0, at = 0; at + width <= h.rows.length; r++, at += width) {
      rows.push({ prefix: h.prefixes[r] ?? 'other', buckets: h.rows.slice(at, at + width - 2), sumNs: h.rows[at + width - 2]!, count: h.rows[at + width - 1]! })
    }
    return { boundsNs: h.boundsNs, rows }
  }

  /** Counters now (zeros after {@link close}). */
  stats(): RttMonitorStats {
    const v = this.#native?.stats() ?? []
    return Object.fromEntries(RTT_MONITOR_STATS_FIELDS.map((k, i) => [k, v[i] ?? 0])) as RttMonitorStats
  }

  /** Stops the capture thread. Idempotent. */
  close(): void {
    this.#native?.close()
    this.#native = undefined
  }
}
