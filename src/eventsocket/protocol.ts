/**
 * M-Lab's event-socket protocol v1 (github.com/m-lab/tcp-info/eventsocket): one JSON object
 * per line, `{"Event":0|1,"Timestamp":"<RFC 3339, ns>","UUID":"…","ID":{…}|null}`, 0 = open
 * (with the socket's `inetdiag.SockID`), 1 = close (`ID` null). `SockID` is encoded as Go
 * encodes it: `{"SPort","DPort","SrcIP","DstIP","Interface","Cookie"}`, ports host order,
 * IPs as Go's `net.IP.String()` of M-Lab's `ip()` (an address whose bytes 4..15 are zero is
 * printed as IPv4 from its first 4 bytes; IPv4-mapped IPv6 as dotted IPv4), `Interface`
 * read big-endian as M-Lab does, `Cookie` the cookie's 64 bits as a signed int64.
 */
import { AF_INET, AF_INET6 } from '../uapi.js'

/** `eventsocket.TCPEvent`. */
export const OPEN = 0
export const CLOSE = 1

/** M-Lab's `inetdiag.SockID` as JSON. */
export interface MlabSockId {
  SPort: number
  DPort: number
  SrcIP: string
  DstIP: string
  Interface: number
  /** The cookie's bits as a signed 64-bit integer (M-Lab's BigQuery compatibility). */
  Cookie: number | bigint
}

/** Offsets in `struct inet_diag_msg` (KERNEL-UAPI.md); `idiag_family` is byte 0. */
const IDM_SPORT = 4
const IDM_DPORT = 6
const IDM_SRC = 8
const IDM_DST = 24
const IDM_IF = 40
/** Bytes of `struct inet_diag_msg` up to and including the socket id. */
export const IDM_ID_END = 52

/**
 * `net.IP.String()` of M-Lab's `ip(bytes)` for the 16 address bytes at `off`. M-Lab guesses
 * the family from the bytes (any of bytes 4–15 set: IPv6); given `family`, an IPv6 address
 * whose last 12 bytes are zero (an anonymized /48 such as `fd77:3::`) stays IPv6 instead of
 * printing as a made-up IPv4 address. Every other address prints as M-Lab prints it.
 */
export function goIp(b: Uint8Array, off: number, family?: number): string {
  let v6 = family === AF_INET6
  for (let i = 4; i < 16 && !v6 && family !== AF_INET; i++) if (b[off + i] !== 0) v6 = true
  if (!v6) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`
  let mapped = b[off + 10] === 0xff && b[off + 11] === 0xff
  for (let i = 0; i < 10 && mapped; i++) if (b[off + i] !== 0) mapped = false
  if (mapped) return `${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`
  const g: number[] = []
  for (let i = 0; i < 8; i++) g.push(((b[off + 2 * i] as number) << 8) | (b[off + 2 * i + 1] as number))
  // RFC 5952 as Go does it: the longest run (leftmost on ties) of at least two zero groups becomes "::".
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':')
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`
}

/** The `SockID` of an `inet_diag_msg` payload (`raw`, at least {@link IDM_ID_END} bytes) and its cookie. */
export function sockIdOf(raw: Uint8Array, cookie: bigint): MlabSockId {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  const signed = BigInt.asIntN(64, cookie)
  return {
    SPort: v.getUint16(IDM_SPORT, false),
    DPort: v.getUint16(IDM_DPORT, false),
    SrcIP: goIp(raw, IDM_SRC, raw[0]),
    DstIP: goIp(raw, IDM_DST, raw[0]),
    Interface: v.getUint32(IDM_IF, false),
    Cookie: signed >= BigInt(Number.MIN_SAFE_INTEGER) && signed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(signed) : signed,
  }
}

/** The JSON text of a `SockID` (a bigint cookie written as a bare integer, as Go does). */
export function sockIdJson(id: MlabSockId): string {
  return `{"SPort":${id.SPort},"DPort":${id.DPort},"SrcIP":${JSON.stringify(id.SrcIP)},"DstIP":${JSON.stringify(id.DstIP)},"Interface":${id.Interface},"Cookie":${id.Cookie.toString()}}`
}

/** Go's `time.Time` JSON (RFC 3339 with nanoseconds, trailing zeros trimmed, UTC) of unix ns. */
export function goTime(unixNs: bigint): string {
  const ms = unixNs / 1_000_000n
  const base = new Date(Number(ms)).toISOString().slice(0, 19)
  const frac = (unixNs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '')
  return `${base}${frac ? `.${frac}` : ''}Z`
}

/** One event line (with `\n`); `idJson` is `sockIdJson()` for opens, omitted for closes. */
export function eventLine(event: typeof OPEN | typeof CLOSE, time: string, uuid: string, idJson?: string): string {
  return `{"Event":${event},"Timestamp":"${time}","UUID":${JSON.stringify(uuid)},"ID":${idJson ?? 'null'}}\n`
}
