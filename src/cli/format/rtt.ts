/** Text and JSON lines of passive RTT samples and per-flow summaries (`tcpinfo rtt`). */
import { flowKey, type RttFlowSummary, type RttSample, type RttStats } from '../../rtt/records.js'
import { toJsonLine } from './json.js'

/** Milliseconds with 3 decimals (microsecond resolution). */
const ms = (ns: number): string => (ns / 1e6).toFixed(3)

/** RFC 3339 UTC time with nanosecond digits. */
export function isoNs(t: bigint): string {
  const s = t / 1_000_000_000n
  const frac = (t % 1_000_000_000n).toString().padStart(9, '0')
  return `${new Date(Number(s) * 1000).toISOString().slice(0, 19)}.${frac}Z`
}

/** One sample: time, RTT in ms, flow (as pping: the flow is the echoing direction). */
export function sampleLine(s: RttSample, json: boolean): string {
  if (json) {
    return toJsonLine({ type: 'sample', time: isoNs(s.timeNs), rttNs: s.rttNs, flow: flowKey(s.flow), ...s.flow, tsecr: s.tsecr })
  }
  return `${isoNs(s.timeNs)} ${ms(s.rttNs).padStart(10)} ms  ${flowKey(s.flow)}\n`
}

/** One flow's summary: count, min, p50, p90, max in ms. */
export function summaryLine(f: RttFlowSummary, json: boolean): string {
  if (json) {
    const { flow, ...stats } = f
    return toJsonLine({ type: 'summary', flow: flowKey(flow), ...flow, ...stats })
  }
  const cols = [f.count.toString().padStart(7), ...[f.minNs, f.p50Ns, f.p90Ns, f.maxNs].map((v) => ms(v).padStart(10))]
  return `${cols.join(' ')}  ${flowKey(f.flow)}\n`
}

/** Header of the summary table. */
export const SUMMARY_HEADER = `${['count', 'min ms', 'p50 ms', 'p90 ms', 'max ms'].map((h, i) => h.padStart(i === 0 ? 7 : 10)).join(' ')}  flow\n`

/** The closing line: packets, samples and every non-zero skip counter. */
export function statsLine(s: RttStats): string {
  const parts = Object.entries(s)
    .filter(([k, v]) => v > 0 && k !== 'flows' && k !== 'tsvals')
    .map(([k, v]) => `${k}=${v}`)
  return `tcpinfo rtt: ${parts.join(' ')}\n`
}
