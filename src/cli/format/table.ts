/** `ss`-like table output. */
import type { Connection } from '../../api/batch.js'

/** Column headers of the table. */
export const TABLE_COLUMNS = ['State', 'Recv-Q', 'Send-Q', 'Local Address:Port', 'Peer Address:Port', 'RTT(ms)', 'Cwnd', 'BytesAcked', 'BytesRecv', 'CC'] as const

function endpoint(ip: string | undefined, port: number | undefined): string {
  if (ip === undefined) return '?'
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`
}

/** The cells of one connection, in {@link TABLE_COLUMNS} order. */
export function rowOf(c: Connection): string[] {
  const d = c.decoded
  const ti = d?.tcpInfo
  return [
    d?.stateName ?? (c.kind === 'closed' ? 'CLOSED' : '?'),
    String(d?.rqueue ?? ''),
    String(d?.wqueue ?? ''),
    endpoint(d?.id.srcIp, d?.id.srcPort),
    endpoint(d?.id.dstIp, d?.id.dstPort),
    ti && ti.rtt !== undefined ? (ti.rtt / 1000).toFixed(3) : '',
    ti?.sndCwnd !== undefined ? String(ti.sndCwnd) : '',
    ti?.bytesAcked !== undefined ? String(ti.bytesAcked) : '',
    ti?.bytesReceived !== undefined ? String(ti.bytesReceived) : '',
    d?.congestion ?? '',
  ]
}

/** Renders rows under a header, columns padded to their widest cell. */
export function renderTable(rows: string[][], prefix: string[] = []): string {
  const header = [...(prefix.length ? [''] : []), ...TABLE_COLUMNS]
  const all = [header, ...rows.map((r, i) => [...(prefix.length ? [prefix[i] ?? ''] : []), ...r])]
  // A loop, not Math.max(...cells): spreading 100k+ rows overflows the call stack.
  const widths = header.map((_, i) => all.reduce((w, r) => Math.max(w, (r[i] ?? '').length), 0))
  return all.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n'
}
