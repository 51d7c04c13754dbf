/**
 * The options of `watch()` and `snapshot()`: their types (the public API) and their
 * schemas (bounds, documentation, flag parsing). The collector's config reuses these
 * fields; the CLI parses its flags with them.
 */
import { isIP } from 'node:net'

import { TcpinfoError } from '../errors.js'
import { ALL_STATES, FAMILY_NAMES, STATE_ALIASES, STATE_GROUPS, TCP_INFO_FIELDS, TCP_STATES, type FamilyName, type TcpStateName } from '../uapi.js'
import { boolean, integer, Invalid, list, nested, number, oneOf, signal, text, validateOptions, type Field, type Schema } from './schema.js'

/** What counts as a change of a connection. */
export interface ChangeRuleOptions {
  /** `tcp_info` fields whose changes are ignored. Default: the four `last*` elapsed-time fields. */
  ignoreTcpInfoFields?: string[]
  /** Count changes of memory attributes (MEMINFO, SKMEMINFO). Default false. */
  includeMemory?: boolean
  /** Only state changes count. Default false. */
  stateOnly?: boolean
}

/** An address family: a name or its `AF_*` number (what `Connection.family` returns). */
export type FamilyOption = FamilyName | 2 | 10

/** Options shared by {@link watch} and {@link snapshot}. */
export interface PollOptions {
  /** Address families, default both. IPv6 dumps also carry v4-mapped sockets. */
  families?: FamilyOption[]
  /**
   * TCP states to dump: a state or group name as `ss` takes them (`'established'`,
   * `'listening'`, `'syn-sent'`, …, `'connected'`, `'synchronized'`, `'all'`;
   * case-insensitive), a list of names, or an `idiag_states` bitmask (`1 << state`).
   * Default M-Lab's 0xF37 (all but SYN-RECV, TIME-WAIT and CLOSE).
   */
  states?: number | TcpStateName | TcpStateName[]
  /** `idiag_ext` attribute request bits, 0–255. Default 0xFF (all). */
  ext?: number
  /** Exclude loopback, link-local, multicast and unspecified addresses (M-Lab `-exclude-local`). Default false. */
  excludeLocal?: boolean
  /** Exclude these local ports, 1–65535 (M-Lab `-exclude-srcport`). At most 1024. */
  excludeSrcPorts?: number[]
  /** Exclude these remote addresses or CIDR networks (M-Lab `-exclude-dstip`); v4 also matches v4-mapped. At most 4096. */
  excludeDst?: string[]
  /**
   * Path of a network namespace to watch, e.g. `/var/run/netns/NAME`, or `'all'` for every
   * namespace of the host (named and anonymous; needs CAP_SYS_ADMIN and CAP_SYS_PTRACE;
   * docs/netns.md). Default: the current one.
   */
  netns?: string
  /** UUID prefix (no `/`, at most 255 characters); default read from {@link uuidPrefixFile}, else `<hostname>_<boot time>_unsafe`. */
  uuidPrefix?: string
  /** File holding the UUID prefix (M-Lab `-uuid-prefix-file`). */
  uuidPrefixFile?: string
}

/** How a watch finds what changed (docs/internals/bpf/design.md). */
export type PollMode = 'netlink' | 'bpf' | 'auto'

/** The poll modes. */
export const POLL_MODES: readonly PollMode[] = ['netlink', 'bpf', 'auto']

/** Options of {@link watch}. */
export interface WatchOptions extends PollOptions {
  /**
   * `'netlink'` (default): one inet_diag dump of every socket per poll. `'bpf'`: BPF
   * tracepoint programs mark the sockets that change (a BPF iterator, `iter/tcp`, Linux
   * 5.9+ with BTF, CAP_BPF + CAP_PERFMON or root, resyncs every 20 s) and only those are
   * fetched; the records are the same.
   * Throws `ERR_UNSUPPORTED` naming what is missing where it cannot run. `'auto'`: BPF where
   * possible, else netlink with one `ERR_UNSUPPORTED` warning in the first batch; also
   * dumps while most sockets change every poll (where BPF stops paying off).
   */
  mode?: PollMode
  /** Poll interval in ms, 0.1 to 86,400,000 (one day). Default 10. */
  intervalMs?: number
  /** What counts as a change. */
  change?: ChangeRuleOptions
  /** Use the kernel's destroy events for final counters of closed connections. Default true. */
  destroyEvents?: boolean
  /**
   * Report sockets that closed without ever having a peer (bound or created, then closed
   * before any poll saw them: destination unspecified, port 0). Default false: they are
   * not connections.
   */
  reportUnconnected?: boolean
  /** Polls that may wait for a slow consumer before polls are skipped (and folded into the next), 1–1024. Default 8. */
  queueDepth?: number
  /** Bytes of queued records beyond which polls are skipped, 64 KiB to 64 GiB (one batch may exceed it). Default 64 MiB. */
  maxQueuedBytes?: number
  /**
   * CPU budget of the poller thread, a fraction of one core (0.001 to 1): the interval is
   * stretched (never below `intervalMs`) so that polling uses at most this much. The
   * interval in force is `stats.effectiveIntervalNanos`. Default: no budget.
   */
  maxCpu?: number
  /** Stops the watch when aborted. */
  signal?: AbortSignal
  /**
   * Kernel receive buffer of the destroy-event socket, bytes, 4 KiB to 64 MiB (the kernel
   * doubles it). Default 8 MiB (about 20k close events between two polls). When it
   * overflows the kernel drops close events (`ENOBUFS`): counted in
   * `stats.destroyOverruns`, a warning `ERR_EVENTS_LOST`, and those connections are closed
   * by the sweep without final counters. Set it with `CAP_NET_ADMIN` above
   * `net.core.rmem_max`.
   */
  eventRcvbufBytes?: number
  /**
   * Account the bytes each reported connection moved since its previous report, in the
   * poller thread: `stats.bytesSent` and `stats.bytesReceived` of each batch (what the
   * metrics read; one 32-byte entry per tracked connection). Default false.
   */
  countBytes?: boolean
  /**
   * Local ports (1–65535, at most {@link MAX_METRIC_PORTS}, each once) whose connections
   * are accounted per port in `Batch.portStats` (opened, closed, bytes). Implies `countBytes`.
   */
  metricPorts?: number[]
}

/** Most `metricPorts` (the core's `MAX_METRIC_PORTS`). */
export const MAX_METRIC_PORTS = 64

/** Longest poll interval, ms (one day; the core's `MAX_POLL_INTERVAL`). */
export const MAX_INTERVAL_MS = 86_400_000
/** Smallest `maxCpu` (the core's `MIN_MAX_CPU`). */
export const MIN_MAX_CPU = 0.001
/** Most batches queued for a consumer (the core's `MAX_QUEUE_DEPTH`). */
export const MAX_QUEUE_DEPTH = 1024
/** Bounds of `maxQueuedBytes` (the core's `MIN_MAX_QUEUED_BYTES`, `MAX_MAX_QUEUED_BYTES`). */
export const QUEUED_BYTES_RANGE = [64 * 1024, 64 * 1024 ** 3] as const

/** Bounds of `eventRcvbufBytes` (at most the core's `MAX_RECV_BUFFER_BYTES`). */
export const EVENT_RCVBUF_RANGE = [4096, 64 * 1024 * 1024] as const

const STATE_WORDS = [...Object.keys(TCP_STATES), ...Object.keys(STATE_GROUPS), ...Object.keys(STATE_ALIASES)]

/** The bitmask of one state or group name (case-insensitive, `_` or `-`), or undefined. */
export function stateBits(name: string): number | undefined {
  const key = name.trim().toLowerCase().replace(/_/g, '-')
  const state = Object.hasOwn(STATE_ALIASES, key) ? STATE_ALIASES[key] : key
  if (state !== undefined && Object.hasOwn(TCP_STATES, state)) return 1 << TCP_STATES[state as keyof typeof TCP_STATES]
  if (Object.hasOwn(STATE_GROUPS, key)) return STATE_GROUPS[key as keyof typeof STATE_GROUPS]
  return undefined
}

function namesToMask(names: readonly unknown[]): number {
  if (names.length === 0 || names.length > 64) throw new Invalid()
  let mask = 0
  for (const n of names) {
    const bits = typeof n === 'string' ? stateBits(n) : undefined
    if (bits === undefined) throw new Invalid(`unknown state ${typeof n === 'string' ? JSON.stringify(n) : String(n)}; valid: ${STATE_WORDS.join(', ')}`)
    mask |= bits
  }
  return mask
}

/** `states`: names, a list of names, or a bitmask; always an `idiag_states` mask. */
export const statesField: Field<number> = {
  expects: `a TCP state name, a list of names, or an idiag_states bitmask from 1 to 0x${ALL_STATES.toString(16)}`,
  doc: `TCP states: ${STATE_WORDS.join(', ')} (default M-Lab's 0xF37)`,
  check: (v) => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 1 || v > ALL_STATES) throw new Invalid()
      return v
    }
    if (typeof v === 'string') return namesToMask([v])
    if (Array.isArray(v)) return namesToMask(v)
    throw new Invalid()
  },
  parse: (t) => {
    if (/^\s*(\d+|0x[0-9a-f]+)\s*$/i.test(t)) return statesField.check(Number(t), '')
    return namesToMask(t.split(',').map((s) => s.trim()).filter(Boolean))
  },
}

const FAMILY_NUMBERS = new Set<unknown>(Object.values(FAMILY_NAMES))

/** One address family: a name or an `AF_*` number; always the number. */
export const familyField: Field<number> = {
  expects: "'inet' or 'inet6' (or AF_INET 2, AF_INET6 10)",
  doc: 'address family: inet or inet6',
  check: (v) => {
    if (typeof v === 'string' && Object.hasOwn(FAMILY_NAMES, v)) return FAMILY_NAMES[v as FamilyName]
    if (FAMILY_NUMBERS.has(v)) return v as number
    throw new Invalid()
  },
  parse: (t) => familyField.check(t.trim().toLowerCase(), ''),
}

/** An IPv4/IPv6 address or CIDR network (`10.0.0.0/8`, `2001:db8::/32`). */
export const cidrField: Field<string> = text('address or CIDR network', 64, {
  expects: 'an IP address or a CIDR network such as 10.0.0.0/8 or 2001:db8::/32',
  test: (s) => {
    const [addr = '', prefix, extra] = s.split('/')
    const v = isIP(addr)
    if (v === 0 || extra !== undefined) return false
    if (prefix === undefined) return true
    const bits = Number(prefix)
    return /^\d{1,3}$/.test(prefix) && bits <= (v === 4 ? 32 : 128)
  },
})

/** A UUID prefix: it becomes part of file names, so no `/`, NUL or dot-only names. */
export const uuidPrefixField: Field<string> = text('UUID prefix', 255, {
  expects: "a non-empty string of at most 255 characters without '/', NUL or control characters, not '.' or '..'",
  // eslint-disable-next-line no-control-regex
  test: (s) => !/[/\x00-\x1f\x7f]/.test(s) && s !== '.' && s !== '..',
})

const changeSchema: Schema<ChangeRuleOptions> = {
  ignoreTcpInfoFields: list(oneOf(TCP_INFO_FIELDS, 'a tcp_info field name (camelCase)'), TCP_INFO_FIELDS.length, 'tcp_info fields whose changes are ignored'),
  includeMemory: boolean('memory attributes count as a change (default false)'),
  stateOnly: boolean('only state changes count (default false)'),
}

/** The schema of {@link PollOptions} (`snapshot()`). */
export const pollSchema: Schema<PollOptions> = {
  families: list(familyField, 2, 'address families (default both)', 1) as Field<FamilyOption[]>,
  states: statesField as Field<NonNullable<PollOptions['states']>>,
  ext: integer(0, 255, 'idiag_ext attribute request bits (default 0xFF)'),
  excludeLocal: boolean('skip loopback, link-local, multicast and unspecified addresses (default false)'),
  excludeSrcPorts: list(integer(1, 65535, 'a local port'), 1024, 'local ports to skip'),
  excludeDst: list(cidrField, 4096, 'peer addresses or networks to skip'),
  netns: text("network namespace path, or 'all'"),
  uuidPrefix: uuidPrefixField,
  uuidPrefixFile: text('file holding the UUID prefix'),
}

/** The schema of {@link WatchOptions} (`watch()`). */
export const watchSchema: Schema<WatchOptions> = {
  ...pollSchema,
  intervalMs: number(0.1, MAX_INTERVAL_MS, 'poll interval, ms (default 10)'),
  mode: oneOf(POLL_MODES, 'poll mode: netlink, bpf or auto (default netlink)'),
  change: nested(changeSchema, 'what counts as a change'),
  destroyEvents: boolean('use destroy events for final counters (default true)'),
  reportUnconnected: boolean('report sockets closed without ever having a peer (default false)'),
  queueDepth: integer(1, MAX_QUEUE_DEPTH, 'polls that may wait for a slow consumer (default 8)'),
  maxQueuedBytes: integer(QUEUED_BYTES_RANGE[0], QUEUED_BYTES_RANGE[1], 'bytes of records that may wait for a slow consumer (default 64 MiB)'),
  maxCpu: number(MIN_MAX_CPU, 1, 'CPU budget of the poller thread, fraction of one core (default none)'),
  signal: signal('stops the watch when aborted'),
  eventRcvbufBytes: integer(EVENT_RCVBUF_RANGE[0], EVENT_RCVBUF_RANGE[1], 'kernel receive buffer of the destroy-event socket, bytes (default 8 MiB)'),
  countBytes: boolean('account bytes moved per poll in stats.bytesSent/bytesReceived (default false)'),
  metricPorts: distinctPorts(list(integer(1, 65535, 'a local port'), MAX_METRIC_PORTS, 'local ports accounted per port in Batch.portStats')),
}

/** A list of ports in which each port appears once. */
function distinctPorts(f: Field<number[]>): Field<number[]> {
  const once = (v: number[]): number[] => {
    if (new Set(v).size !== v.length) throw new Invalid('each port at most once')
    return v
  }
  return { ...f, check: (v, n) => once(f.check(v, n)), parse: (t, n) => once(f.parse(t, n)) }
}

/** Spellings users try (from `ss`, M-Lab and the CLI), mapped to the option they meant. */
export const OPTION_ALIASES: Readonly<Record<string, string>> = {
  interval: 'intervalMs',
  intervalms: 'intervalMs',
  family: 'families',
  state: 'states',
  excludeSrcport: 'excludeSrcPorts',
  excludeSrcPort: 'excludeSrcPorts',
  excludeSrcports: 'excludeSrcPorts',
  excludeDstip: 'excludeDst',
  excludeDstIp: 'excludeDst',
  excludeDstIps: 'excludeDst',
  uuidPrefixfile: 'uuidPrefixFile',
  noDestroyEvents: 'destroyEvents',
  maxcpu: 'maxCpu',
  cpuBudget: 'maxCpu',
  pollMode: 'mode',
}

/** Validated options: names resolved to numbers, everything in bounds. */
export interface CheckedWatchOptions extends Omit<WatchOptions, 'families' | 'states'> {
  families?: number[]
  states?: number
}

/** Checks `watch()` options; throws `ERR_CONFIG` naming the option. */
export function checkWatchOptions(input: unknown): CheckedWatchOptions {
  return validateOptions(watchSchema, input, 'watch() options', OPTION_ALIASES) as CheckedWatchOptions
}

/** Checks `snapshot()` options; options of `watch()` only are named as such. */
export function checkSnapshotOptions(input: unknown): CheckedWatchOptions {
  if (typeof input === 'object' && input !== null) {
    const watchOnly = Object.keys(input).find((k) => Object.hasOwn(watchSchema, k) && !Object.hasOwn(pollSchema, k))
    if (watchOnly !== undefined) throw new TcpinfoError('ERR_CONFIG', `${watchOnly} is an option of watch(), not of snapshot()`)
  }
  return validateOptions(pollSchema, input, 'snapshot() options', OPTION_ALIASES) as CheckedWatchOptions
}
