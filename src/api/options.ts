/**
 * Options of {@link watch} and {@link snapshot}, validated and turned into the native
 * poller's options once.
 */
import { TcpinfoError } from '../errors.js'
import type { NativePollerOptions } from '../native.js'

/** TCP state names accepted in `states` (as `ss state` filters name them). */
export const TCP_STATES = {
  established: 1,
  'syn-sent': 2,
  'syn-recv': 3,
  'fin-wait-1': 4,
  'fin-wait-2': 5,
  'time-wait': 6,
  close: 7,
  'close-wait': 8,
  'last-ack': 9,
  listen: 10,
  closing: 11,
} as const

/** A TCP state name. */
export type TcpStateName = keyof typeof TCP_STATES

/** What counts as a change of a connection. */
export interface ChangeRuleOptions {
  /** `tcp_info` fields whose changes are ignored. Default: the four `last*` elapsed-time fields. */
  ignoreTcpInfoFields?: string[]
  /** Count changes of memory attributes (MEMINFO, SKMEMINFO). Default false. */
  includeMemory?: boolean
  /** Only state changes count. Default false. */
  stateOnly?: boolean
}

/** Options shared by {@link watch} and {@link snapshot}. */
export interface PollOptions {
  /** Address families, default both. */
  families?: ('inet' | 'inet6')[]
  /** TCP states to dump: a bitmask (`1 << state`) or names. Default M-Lab's 0xF37 (all but SYN-RECV, TIME-WAIT, CLOSE). */
  states?: number | TcpStateName[]
  /** `idiag_ext` attribute request bits. Default 0xFF (all). */
  ext?: number
  /** Exclude loopback, link-local, multicast and unspecified addresses (M-Lab `-exclude-local`). Default false. */
  excludeLocal?: boolean
  /** Exclude these local ports (M-Lab `-exclude-srcport`). */
  excludeSrcPorts?: number[]
  /** Exclude these remote addresses or CIDR networks (M-Lab `-exclude-dstip`); v4 also matches v4-mapped. */
  excludeDst?: string[]
  /** Path of a network namespace to watch, e.g. `/var/run/netns/NAME`. Default: the current one. */
  netns?: string
  /** UUID prefix; default read from {@link uuidPrefixFile}, else `<hostname>_<boot time>_unsafe`. */
  uuidPrefix?: string
  /** File holding the UUID prefix (M-Lab `-uuid-prefix-file`). */
  uuidPrefixFile?: string
}

/** Options of {@link watch}. */
export interface WatchOptions extends PollOptions {
  /** Poll interval in ms. Default 10. */
  intervalMs?: number
  /** What counts as a change. */
  change?: ChangeRuleOptions
  /** Use the kernel's destroy events for final counters of closed connections. Default true. */
  destroyEvents?: boolean
  /** Polls that may wait for a slow consumer before polls are skipped (and folded into the next). Default 8. */
  queueDepth?: number
  /** Bytes of queued records beyond which polls are skipped (one batch may exceed it). Default 64 MiB. */
  maxQueuedBytes?: number
  /** Stops the watch when aborted. */
  signal?: AbortSignal
}

const FAMILIES = { inet: 2, inet6: 10 } as const

/** Validates `o` and converts it to native options. Throws `ERR_CONFIG`. */
export function toNativeOptions(o: WatchOptions): NativePollerOptions {
  const bad = (msg: string): never => {
    throw new TcpinfoError('ERR_CONFIG', msg)
  }
  if (o.intervalMs !== undefined && !(Number.isFinite(o.intervalMs) && o.intervalMs > 0)) bad('intervalMs must be a positive number')
  const families = o.families?.map((f) => FAMILIES[f] ?? bad(`unknown family ${JSON.stringify(f)} (use 'inet' or 'inet6')`))
  return {
    intervalMs: o.intervalMs,
    families,
    states: o.states === undefined ? undefined : statesMask(o.states),
    ext: o.ext,
    excludeLocal: o.excludeLocal,
    excludeSrcPorts: o.excludeSrcPorts,
    excludeDst: o.excludeDst,
    ignoreTcpInfoFields: o.change?.ignoreTcpInfoFields,
    includeMemory: o.change?.includeMemory,
    stateOnly: o.change?.stateOnly,
    destroyEvents: o.destroyEvents,
    netns: o.netns,
    queueDepth: o.queueDepth,
    maxQueuedBytes: o.maxQueuedBytes,
  }
}

/** A states option as an `idiag_states` bitmask. */
export function statesMask(states: number | TcpStateName[]): number {
  if (typeof states === 'number') return states
  let mask = 0
  for (const s of states) {
    const n = TCP_STATES[s]
    if (n === undefined) throw new TcpinfoError('ERR_CONFIG', `unknown TCP state ${JSON.stringify(s)}`)
    mask |= 1 << n
  }
  return mask
}
