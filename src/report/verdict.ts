/**
 * What limited a connection over its life: the sender (the application or its send buffer),
 * the receiver (its advertised window), or the network (congestion control), from the
 * kernel's chrono accounting (`tcpi_busy_time`, `tcpi_rwnd_limited`, `tcpi_sndbuf_limited`,
 * Linux 4.10+) and the delivery-rate app-limited flag. Method and sources: docs/REPORT.md.
 */

/** The limit with the largest share of the connection's time. */
export type LimitKind = 'sender' | 'receiver' | 'network' | 'unknown'

/** Shares of the observed time (0..1) and the verdict. */
export interface Verdict {
  verdict: LimitKind
  /** Idle (nothing to send: the application) plus send-buffer-limited time. */
  sender: number
  /** Receive-window-limited time. */
  receiver: number
  /** Busy and limited by neither: the congestion window, i.e. the network path. */
  network: number
  /** Share of samples with `deliveryRateAppLimited` set. */
  appLimitedSamples: number
  /** Whether the local end mostly received data (then the limits were measured at the peer). */
  receiving: boolean
  /** How the verdict was reached, one line. */
  method: string
}

/** The inputs: first and last samples of the counters, and the app-limited sample share. */
export interface VerdictInput {
  /** Observed time, µs (last timestamp − first). */
  elapsedUs: number
  /** Increase of `busyTime`, `rwndLimited`, `sndbufLimited` over that time, µs (NaN if absent). */
  busyUs: number
  rwndUs: number
  sndbufUs: number
  /** Increase of bytes sent (acked) and received. */
  bytesOut: number
  bytesIn: number
  appLimitedSamples: number
}

const clamp = (x: number): number => (Number.isFinite(x) ? Math.min(Math.max(x, 0), 1) : 0)

/**
 * Computes the verdict; see docs/REPORT.md for the method. Times in µs, bytes as counted.
 * @example
 * verdictOf({ elapsedUs: 10e6, busyUs: 9e6, rwndUs: 8e6, sndbufUs: 0, bytesOut: 1e6, bytesIn: 0, appLimitedSamples: 0 }).verdict // 'receiver'
 */
export function verdictOf(v: VerdictInput): Verdict {
  const receiving = v.bytesIn > v.bytesOut
  const base = { appLimitedSamples: v.appLimitedSamples, receiving }
  if (receiving) {
    return { ...base, verdict: 'unknown', sender: 0, receiver: 0, network: 0, method: 'the local end received; limits are accounted at the sender' }
  }
  if (!(v.elapsedUs > 0) || !Number.isFinite(v.busyUs)) {
    // No chrono counters (kernel < 4.10, 168-byte tcp_info): only the app-limited flag is known.
    const sender = clamp(v.appLimitedSamples)
    return { ...base, verdict: sender > 0.5 ? 'sender' : 'unknown', sender, receiver: 0, network: 0, method: 'no busy_time: app-limited share of samples only' }
  }
  const receiver = clamp(v.rwndUs / v.elapsedUs)
  const sndbuf = clamp(v.sndbufUs / v.elapsedUs)
  const busy = clamp(v.busyUs / v.elapsedUs)
  const network = clamp(busy - receiver - sndbuf)
  const sender = clamp(1 - busy + sndbuf)
  const ranked: [LimitKind, number][] = [
    ['sender', sender],
    ['receiver', receiver],
    ['network', network],
  ]
  ranked.sort((a, b) => b[1] - a[1])
  const top = ranked[0] as [LimitKind, number]
  return { ...base, verdict: top[1] > 0 ? top[0] : 'unknown', sender, receiver, network, method: 'chrono: idle+sndbuf_limited / rwnd_limited / busy−rwnd−sndbuf over elapsed time' }
}
