/**
 * `Connection.tcpInfo` read straight from the record's `tcp_info` bytes in the batch's
 * payload region: no native call, no copy. For each `tcp_info` length the kernel sends
 * (a handful: 168, 224, 232, 280 …) one function is generated once, whose body is a
 * single object literal of the fields present at that length, each a `DataView` read at
 * its offset. V8 gives every object of one length the same hidden class, and building one
 * costs about a microsecond where setting ~80 properties through napi cost ~75 µs.
 *
 * The offsets come from the core (`nativeTcpInfoLayout()`: `FIELDS` in
 * crates/tcpinfo-core/src/parse/tcp_info.rs), so they are defined once; the bitfields
 * follow `TcpInfo::fields()` there. The objects are identical to what
 * `nativeDecodeRecords` builds (same keys in the same order, same values and types),
 * which `__test__/records.spec.ts` checks record by record.
 */
import { native } from '../native.js'
import type { TcpInfo } from './types.js'

/** `struct inet_diag_msg` length: attributes follow it. */
const INET_DIAG_MSG_LEN = 72
/** `INET_DIAG_INFO`: the attribute holding `struct tcp_info`. */
const INET_DIAG_INFO = 2
/** Length from which `tcpi_delivery_rate_app_limited` exists (Linux 4.9). */
const APP_LIMITED_MIN_LEN = 168
/** Length from which `tcpi_fastopen_client_fail` exists (Linux 5.5). */
const FASTOPEN_FAIL_MIN_LEN = 232
/** Offset of the AccECN bytes whose layout depends on the kernel. */
const ACCECN_TAIL_OFF = 276

type Build = (v: DataView, o: number) => TcpInfo

let layout: { names: string[]; offsets: number[]; sizes: number[]; accecnBitfield: boolean } | undefined
const builders = new Map<number, Build>()

/** The body of the builder for a `tcp_info` of `len` bytes at offset `o` of `v`. */
function source(len: number): string {
  layout ??= native().nativeTcpInfoLayout()
  const { names, offsets, sizes, accecnBitfield } = layout
  const parts: string[] = []
  names.forEach((name, i) => {
    const off = offsets[i] ?? 0
    const size = sizes[i] ?? 8
    if (off + size > len) return
    const read = size === 1 ? `v.getUint8(o + ${off})` : size === 2 ? `v.getUint16(o + ${off}, true)` : size === 4 ? `v.getUint32(o + ${off}, true)` : `v.getBigUint64(o + ${off}, true)`
    parts.push(`${JSON.stringify(name)}: ${read}`)
  })
  if (len > 6) parts.push('sndWscale: v.getUint8(o + 6) & 15', 'rcvWscale: v.getUint8(o + 6) >> 4')
  if (len >= APP_LIMITED_MIN_LEN) parts.push('deliveryRateAppLimited: (v.getUint8(o + 7) & 1) === 1')
  if (len >= FASTOPEN_FAIL_MIN_LEN) parts.push('fastopenClientFail: (v.getUint8(o + 7) >> 1) & 3')
  const tail = `v.getUint32(o + ${ACCECN_TAIL_OFF}, true)`
  if (accecnBitfield) {
    if (len >= ACCECN_TAIL_OFF + 4) parts.push(`accecnFailMode: (${tail} >>> 4) & 15`, `accecnOptSeen: (${tail} >>> 2) & 3`, `ecnMode: ${tail} & 3`, `options2: ${tail} >>> 8`)
  } else {
    if (len >= ACCECN_TAIL_OFF + 2) parts.push(`accecnFailMode: v.getUint16(o + ${ACCECN_TAIL_OFF}, true)`)
    if (len >= ACCECN_TAIL_OFF + 4) parts.push(`accecnOptSeen: v.getUint16(o + ${ACCECN_TAIL_OFF + 2}, true)`)
  }
  return `return { ${parts.join(', ')} }`
}

function builder(len: number): Build {
  let b = builders.get(len)
  if (!b) {
    // Generated from the core's field table only (names are identifiers, offsets numbers).
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    b = new Function('v', 'o', source(len)) as Build
    builders.set(len, b)
  }
  return b
}

/**
 * The decoded `tcp_info` of the netlink payload `len` bytes at `start` of `v` (an
 * `inet_diag_msg` and its attributes), or `undefined` when it has none.
 */
export function tcpInfoOf(v: DataView, start: number, len: number): TcpInfo | undefined {
  const end = start + len
  let a = start + INET_DIAG_MSG_LEN
  while (a + 4 <= end) {
    const alen = v.getUint16(a, true)
    if (alen < 4 || a + alen > end) return undefined
    if (v.getUint16(a + 2, true) === INET_DIAG_INFO) return builder(alen - 4)(v, a + 4)
    a += (alen + 3) & ~3
  }
  return undefined
}
