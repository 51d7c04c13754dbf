/**
 * The shared vocabulary of the TypeScript side, defined once: TCP states, address
 * families, the batch index layout, record kinds, error and warning codes. The Rust core
 * defines the same facts once on its side; `__test__/vocabulary.spec.ts` checks that the
 * two agree (through `nativeVocabulary()`).
 */

/** `AF_INET` (include/linux/socket.h). */
export const AF_INET = 2
/** `AF_INET6`. */
export const AF_INET6 = 10

/** Address family names, as the API and the CLI spell them. */
export const FAMILY_NAMES = { inet: AF_INET, inet6: AF_INET6 } as const
/** An address family name. */
export type FamilyName = keyof typeof FAMILY_NAMES

/** The name of a family number (`'inet'`, `'inet6'`), or the number as text if unknown. */
export function familyName(family: number): FamilyName | string {
  return family === AF_INET ? 'inet' : family === AF_INET6 ? 'inet6' : String(family)
}

/**
 * TCP states by number (include/net/tcp_states.h), named as `ss` prints them; index =
 * state number.
 */
export const STATE_NAMES = [
  'UNKNOWN',
  'ESTAB',
  'SYN-SENT',
  'SYN-RECV',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'TIME-WAIT',
  'UNCONN',
  'CLOSE-WAIT',
  'LAST-ACK',
  'LISTEN',
  'CLOSING',
  'NEW-SYN-RECV',
  'BOUND-INACTIVE',
] as const

/** `idiag_states` bit of every state (`ss`'s `SS_ALL`). */
export const ALL_STATES = (1 << STATE_NAMES.length) - 1

/** State filter names as `ss state FILTER` takes them, to state numbers. */
export const TCP_STATES = {
  established: 1,
  'syn-sent': 2,
  'syn-recv': 3,
  'fin-wait-1': 4,
  'fin-wait-2': 5,
  'time-wait': 6,
  closed: 7,
  'close-wait': 8,
  'last-ack': 9,
  listening: 10,
  closing: 11,
  'new-syn-recv': 12,
  'bound-inactive': 13,
} as const

const bit = (s: keyof typeof TCP_STATES): number => 1 << TCP_STATES[s]
const CONNECTED = ALL_STATES & ~(bit('listening') | bit('closed') | bit('time-wait') | bit('syn-recv'))
const BUCKET = bit('syn-recv') | bit('time-wait')

/** `ss`'s state groups, as bitmasks (iproute2 misc/ss.c). */
export const STATE_GROUPS = {
  all: ALL_STATES,
  connected: CONNECTED,
  synchronized: CONNECTED & ~bit('syn-sent'),
  bucket: BUCKET,
  big: ALL_STATES & ~BUCKET,
} as const

/** Other spellings accepted for states: `ss`'s output names and older tcpinfo names. */
export const STATE_ALIASES: Readonly<Record<string, keyof typeof TCP_STATES>> = {
  estab: 'established',
  listen: 'listening',
  close: 'closed',
  unconn: 'closed',
}

/** A TCP state or group name (`established`, `listening`, …, `connected`, `all`). */
export type TcpStateName = keyof typeof TCP_STATES | keyof typeof STATE_GROUPS | 'listen' | 'close' | 'estab' | 'unconn'

/** M-Lab's default `idiag_states`: every state but SYN-RECV, TIME-WAIT and CLOSE. */
export const DEFAULT_STATES = 0xf37

/** Batch index layout (crates/tcpinfo-core/src/poll/batch.rs, docs/internals/poll/batch-format.md). */
export const INDEX = {
  /** Bytes of one entry. */
  entryLen: 32,
  kind: 0,
  flags: 1,
  family: 2,
  state: 3,
  payloadOff: 4,
  payloadLen: 8,
  lineOff: 12,
  lineLen: 16,
  /** Position of the record's network namespace in the batch's namespace table (u32). */
  netns: 20,
  cookie: 24,
} as const

/** Index flags. */
export const FLAG_HAS_RECORD = 1
/** Index flag: reported by a destroy event (final counters). */
export const FLAG_FROM_DESTROY_EVENT = 2
/** Index flag: closed before any poll saw it. */
export const FLAG_UNSEEN = 4

/** Record kinds, by the index's kind byte. */
export const RECORD_KINDS = ['opened', 'changed', 'closed'] as const

/** Error codes raised by the Rust core (`ERROR_CODES` in crates/tcpinfo-core/src/error.rs). */
export const CORE_ERROR_CODES = [
  'ERR_SOCKET',
  'ERR_KERNEL',
  'ERR_MALFORMED',
  'ERR_DUMP_INTERRUPTED',
  'ERR_CONFIG',
  'ERR_CLOSED',
  'ERR_NETNS',
  'ERR_THREAD',
  'ERR_INTERNAL',
  'ERR_UNSUPPORTED',
] as const

/**
 * Error codes of the archive writer and reader (`Error::code` in
 * crates/tcpinfo-archive/src/error.rs and crates/tcpinfo-archive-read/src/error.rs).
 */
export const ARCHIVE_ERROR_CODES = ['ERR_CONFIG', 'ERR_CLOSED', 'ERR_ARCHIVE_THREAD', 'ERR_ARCHIVE_TIMEOUT', 'ERR_ARCHIVE'] as const

/** Error codes raised only by the TypeScript side. */
export const TS_ERROR_CODES = ['ERR_UNSUPPORTED_PLATFORM', 'ERR_NATIVE_MISSING'] as const

/** Error codes of passive RTT (`Error::code` in crates/tcpinfo-rtt/src/error.rs). */
export const RTT_ERROR_CODES = ['ERR_PERMISSION', 'ERR_SOCKET', 'ERR_IO', 'ERR_CAPTURE_FILE', 'ERR_CONFIG', 'ERR_NETNS', 'ERR_CLOSED'] as const

/** Poll warning codes (`WARNING_CODES` in crates/tcpinfo-core/src/poll/batch.rs). */
export const WARNING_CODES = [
  'ERR_SOCKET',
  'ERR_KERNEL',
  'ERR_MALFORMED',
  'ERR_DUMP_INTERRUPTED',
  'ERR_EVENTS_LOST',
  'ERR_FILTER_REJECTED',
  'ERR_INTERNAL',
  'ERR_UNSUPPORTED',
] as const

/** The code of a poll warning. */
export type WarningCode = (typeof WARNING_CODES)[number]

/**
 * `tcp_info` fields (camelCase) a change rule may ignore: the plain fields of
 * `struct tcp_info` in offset order (`FIELDS` in crates/tcpinfo-core/src/parse/tcp_info.rs).
 */
export const TCP_INFO_FIELDS = [
  'state', 'caState', 'retransmits', 'probes', 'backoff', 'options',
  'rto', 'ato', 'sndMss', 'rcvMss', 'unacked', 'sacked', 'lost', 'retrans', 'fackets',
  'lastDataSent', 'lastAckSent', 'lastDataRecv', 'lastAckRecv', 'pmtu', 'rcvSsthresh', 'rtt', 'rttvar',
  'sndSsthresh', 'sndCwnd', 'advmss', 'reordering', 'rcvRtt', 'rcvSpace', 'totalRetrans',
  'pacingRate', 'maxPacingRate', 'bytesAcked', 'bytesReceived', 'segsOut', 'segsIn', 'notsentBytes', 'minRtt',
  'dataSegsIn', 'dataSegsOut', 'deliveryRate', 'busyTime', 'rwndLimited', 'sndbufLimited', 'delivered', 'deliveredCe',
  'bytesSent', 'bytesRetrans', 'dsackDups', 'reordSeen', 'rcvOoopack', 'sndWnd', 'rcvWnd', 'rehash',
  'totalRto', 'totalRtoRecoveries', 'totalRtoTime', 'receivedCe', 'deliveredE1Bytes', 'deliveredE0Bytes',
  'deliveredCeBytes', 'receivedE1Bytes', 'receivedE0Bytes', 'receivedCeBytes',
] as const
