/**
 * The collector's configuration in two stages (ripgrep's LowArgs → HiArgs): flags, the
 * environment and an optional config file are read into a {@link RawCollectorConfig}
 * that only records what was said and where; {@link resolveCollectorConfig} checks it
 * once with the shared schema fields and returns the immutable {@link CollectorConfig},
 * the only input of the daemon. Precedence: flag > environment > file > default.
 *
 * M-Lab tcp-info's spellings work unchanged: single-dash flags (`-output=/x`,
 * `-exclude-local=false`), their aliases (`-prometheusx.listen-address`,
 * `-tcpinfo.eventsocket`, `-anonymize.ip`) and their environment variables (the flag
 * name upper-cased, non-alphanumerics to `_`: `OUTPUT`, `REPS`, `TCPINFO_EVENTSOCKET`).
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'

import { parseDocument } from 'yaml'

import { TcpinfoError } from '../errors.js'
import { cidrField, MAX_INTERVAL_MS, MIN_MAX_CPU, POLL_MODES, type PollMode } from './poll-options.js'
import { boolean, checkField, configError, echo, integer, Invalid, list, number, oneOf, parseField, suggest, text, type Field } from './schema.js'

/** Where a value came from. */
export type ConfigSource = 'flag' | 'env' | 'file' | 'default'

/** The validated, immutable configuration of `tcpinfo collect`. */
export interface CollectorConfig {
  /** Archive root directory. */
  readonly output: string
  /** Polls to run; 0 = until stopped. */
  readonly reps: number
  /** Poll interval, ms. */
  readonly intervalMs: number
  /** Data reaches the files at least this often, ms. */
  readonly flushIntervalMs: number
  /** A file older than this is finished and the connection continues in a new sequence file, ms. */
  readonly rotateAgeMs: number
  /** Archive files open at once. */
  readonly maxOpenFiles: number
  /** File holding the UUID prefix, if any. */
  readonly uuidPrefixFile?: string
  /** Local ports whose connections are not archived. */
  readonly excludeSrcPorts: readonly number[]
  /** Peer addresses or networks whose connections are not archived. */
  readonly excludeDst: readonly string[]
  /** Skip loopback, link-local, multicast and unspecified addresses. */
  readonly excludeLocal: boolean
  /** M-Lab's IP anonymization of archived addresses. */
  readonly anonymizeIp: 'none' | 'netblock'
  /** Prometheus listen address (`host:port`, `:port` = all interfaces; empty = no server). */
  readonly prom: string
  /** Event socket path; empty = none. */
  readonly eventsocket: string
  /** File mode of the event socket (default 0o660). */
  readonly eventsocketMode: number
  /** Bytes queued for one event-socket client beyond which it is dropped. */
  readonly eventsocketQueueBytes: number
  /** Local ports with per-port metrics (bounded list). */
  readonly metricsPorts: readonly number[]
  /** Network namespace path to watch, or `all`; empty = the current one. */
  readonly netns: string
  /** CPU budget of the poller thread, fraction of one core; unset = none (watch()'s `maxCpu`). */
  readonly maxCpu?: number
  /** Poll mode (watch()'s `mode`): netlink dumps, the BPF iterator, or BPF where possible. */
  readonly pollMode: PollMode
  /** Log line format. */
  readonly logFormat: 'text' | 'json'
  /** Lowest level logged. */
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error'
  /** Kafka brokers (`host:port`); empty = no Kafka sink (issue 12). */
  readonly kafkaBrokers: readonly string[]
  /** Kafka topic. */
  readonly kafkaTopic: string
  /** Kafka message value format. */
  readonly kafkaFormat: 'archival' | 'decoded'
  /** Kafka compression codec. */
  readonly kafkaCompression: 'none' | 'gzip' | 'lz4' | 'zstd'
  /** Bytes queued for Kafka beyond which the oldest records are dropped. */
  readonly kafkaBufferBytes: number
  /** `all`, `opens-closes`, or N: every Nth poll's changes (opens and closes always). */
  readonly kafkaSample: string
  /** Bytes of keys and values per Kafka produce request at most. */
  readonly kafkaBatchBytes: number
  /** A partition's partial batch is sent after this long, ms. */
  readonly kafkaLingerMs: number
  /** TLS to the brokers (system CAs unless `kafkaTlsCa`). */
  readonly kafkaTls: boolean
  /** PEM files: CAs to trust; client certificate chain and key (mutual TLS). Empty = none. */
  readonly kafkaTlsCa: string
  readonly kafkaTlsCert: string
  readonly kafkaTlsKey: string
  /** SASL mechanism (`''` = no SASL), user name and password. */
  readonly kafkaSaslMechanism: '' | 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'
  readonly kafkaSaslUsername: string
  readonly kafkaSaslPassword: string
  /** Interface of the passive RTT capture (`any`: all); empty = none (issue 14). */
  readonly passiveRtt: string
  /** Most remote prefixes with their own passive RTT histogram. */
  readonly passiveRttMaxPrefixes: number
  /** IPv4 prefix length of the passive RTT histograms. */
  readonly passiveRttV4Prefix: number
  /** IPv6 prefix length of the passive RTT histograms. */
  readonly passiveRttV6Prefix: number
}

/** One collector option: its field, flag, M-Lab aliases and default. */
interface OptionSpec {
  key: keyof CollectorConfig
  flag: string
  /** Other flag names (without dashes): M-Lab's. */
  aliases?: string[]
  field: Field<unknown>
  default: unknown
  /** Repeated flags accumulate (lists). */
  repeatable?: boolean
  /** A boolean flag: `-flag` alone means true. */
  bool?: boolean
  /** The default as `--help` shows it, when not `String(default)`. */
  defaultText?: string
}

/**
 * A duration: Go's syntax (`10m`, `1h30m`, `500ms`, `2.5s`) or a number of ms; within
 * `[minMs, maxMs]`. Always ms.
 */
export function duration(minMs: number, maxMs: number, doc: string): Field<number> {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const expects = `a duration from ${minMs} ms to ${maxMs / 1000} s (like 10m, 30s, 500ms, or a number of ms)`
  const inRange = (ms: number): number => {
    if (!Number.isFinite(ms) || ms < minMs || ms > maxMs) throw new Invalid()
    return ms
  }
  const parse = (t: string): number => {
    const s = t.trim()
    if (/^\d+(\.\d+)?$/.test(s)) return inRange(Number(s))
    if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) throw new Invalid()
    let ms = 0
    for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * (units[m[2] as string] ?? Number.NaN)
    return inRange(ms)
  }
  return {
    expects,
    doc,
    check: (v) => (typeof v === 'number' ? inRange(v) : typeof v === 'string' ? parse(v) : (() => { throw new Invalid() })()),
    parse,
  }
}

/** `host:port` or `:port` (all interfaces), as Go's `net.Listen` takes it. */
export const listenAddressField: Field<string> = text('listen address', 300, {
  expects: 'a listen address host:port or :port (port 0-65535)',
  test: (s) => {
    const m = /^(\[([0-9a-fA-F:.]+)\]|[^:[\]]*):(\d{1,5})$/.exec(s)
    if (!m || Number(m[3]) > 65535) return false
    const host = m[2] ?? m[1] ?? ''
    return host === '' || isIP(host) !== 0 || /^[a-zA-Z0-9.-]+$/.test(host)
  },
})

/** A file mode in octal (`0660`, `660`, `0o660`), or a number from a config file. */
export const fileModeField: Field<number> = {
  expects: 'an octal file mode from 0000 to 0777 (like 0660)',
  doc: 'file mode',
  check: (v) => {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0o777) return v
    if (typeof v === 'string') return fileModeField.parse(v, '')
    throw new Invalid()
  },
  parse: (t) => {
    const m = /^\s*(?:0o?)?([0-7]{1,3})\s*$/i.exec(t)
    if (!m) throw new Invalid()
    return parseInt(m[1] as string, 8)
  },
}

/**
 * `field`, or the empty string (the option is off). Flag and environment text are checked
 * like library values: `--netns=$'\0'` was taken as it was (found by
 * __test__/config-fuzz.spec.ts).
 */
function emptyOr(field: Field<string>): Field<string> {
  return { ...field, check: (v, n) => (v === '' ? '' : field.check(v, n)), parse: (t, n) => (t === '' ? '' : field.check(t, n)) }
}

/** Every option of `tcpinfo collect`, in help order. */
export const COLLECTOR_OPTIONS: readonly OptionSpec[] = [
  { key: 'output', flag: 'output', field: text('archive directory'), default: './data' },
  { key: 'reps', flag: 'reps', field: integer(0, Number.MAX_SAFE_INTEGER, 'polls to run, 0 = until stopped'), default: 0 },
  { key: 'intervalMs', flag: 'interval', field: duration(0.1, MAX_INTERVAL_MS, 'poll interval'), default: 10 },
  { key: 'flushIntervalMs', flag: 'flush-interval', field: duration(1, 3_600_000, 'data reaches the files at least this often'), default: 1000 },
  { key: 'rotateAgeMs', flag: 'rotate-age', field: duration(10, 7 * 86_400_000, 'files older than this are finished'), default: 600_000 },
  { key: 'maxOpenFiles', flag: 'max-open-files', field: integer(1, 1_000_000, 'archive files open at once'), default: 16_384 },
  { key: 'uuidPrefixFile', flag: 'uuid-prefix-file', field: text('file holding the UUID prefix'), default: undefined },
  { key: 'excludeSrcPorts', flag: 'exclude-srcport', field: list(integer(1, 65535, 'a local port'), 1024, 'local ports not archived'), default: [], repeatable: true },
  { key: 'excludeDst', flag: 'exclude-dstip', field: list(cidrField, 4096, 'peer networks not archived'), default: [], repeatable: true },
  { key: 'excludeLocal', flag: 'exclude-local', field: boolean('skip loopback, link-local, multicast and unspecified addresses'), default: true, bool: true },
  { key: 'anonymizeIp', flag: 'anonymize-ip', aliases: ['anonymize.ip'], field: oneOf(['none', 'netblock'] as const, 'IP anonymization'), default: 'none' },
  { key: 'prom', flag: 'prom', aliases: ['prometheusx.listen-address'], field: { ...listenAddressField, check: (v, n) => (v === '' ? '' : listenAddressField.check(v, n)), parse: (t, n) => (t === '' ? '' : listenAddressField.parse(t, n)) }, default: '127.0.0.1:9990' },
  { key: 'eventsocket', flag: 'eventsocket', aliases: ['tcpinfo.eventsocket'], field: emptyOr(text('event socket path')), default: '' },
  { key: 'eventsocketMode', flag: 'eventsocket-mode', field: fileModeField, default: 0o660, defaultText: '0660' },
  { key: 'eventsocketQueueBytes', flag: 'eventsocket-queue-bytes', field: integer(4096, 1 << 30, 'bytes queued per event-socket client'), default: 1 << 20 },
  { key: 'metricsPorts', flag: 'metrics-port', field: list(integer(1, 65535, 'a local port'), 64, 'local ports with per-port metrics'), default: [], repeatable: true },
  { key: 'netns', flag: 'netns', field: emptyOr(text('namespace path')), default: '' },
  { key: 'maxCpu', flag: 'max-cpu', field: number(MIN_MAX_CPU, 1, 'CPU budget of the poller, fraction of one core'), default: undefined },
  { key: 'pollMode', flag: 'poll-mode', field: oneOf(POLL_MODES, 'poll mode'), default: 'netlink' },
  { key: 'logFormat', flag: 'log-format', field: oneOf(['text', 'json'] as const, 'log line format'), default: 'text' },
  { key: 'logLevel', flag: 'log-level', field: oneOf(['debug', 'info', 'warn', 'error'] as const, 'lowest level logged'), default: 'info' },
  { key: 'kafkaBrokers', flag: 'kafka-brokers', field: list(text('Kafka broker', 300, { expects: 'a broker host:port', test: (s) => /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535 }), 64, 'Kafka brokers'), default: [], repeatable: true },
  { key: 'kafkaTopic', flag: 'kafka-topic', field: text('Kafka topic', 249, { expects: 'a Kafka topic name (letters, digits, . _ -; at most 249)', test: (s) => /^[a-zA-Z0-9._-]+$/.test(s) }), default: 'tcpinfo' },
  { key: 'kafkaFormat', flag: 'kafka-format', field: oneOf(['archival', 'decoded'] as const, 'Kafka message value format'), default: 'archival' },
  { key: 'kafkaCompression', flag: 'kafka-compression', field: oneOf(['none', 'gzip', 'lz4', 'zstd'] as const, 'Kafka compression'), default: 'none' },
  { key: 'kafkaBufferBytes', flag: 'kafka-buffer-bytes', field: integer(4096, 2 ** 32, 'bytes queued for Kafka'), default: 64 << 20 },
  { key: 'kafkaSample', flag: 'kafka-sample', field: text('Kafka sampling', 20, { expects: 'all, opens-closes, or N (every Nth poll, 1 to 1000000)', test: (s) => /^(all|opens-closes|[1-9]\d{0,6})$/.test(s) && (!/^\d/.test(s) || Number(s) <= 1_000_000) }), default: 'all' },
  { key: 'kafkaBatchBytes', flag: 'kafka-batch-bytes', field: integer(1024, 64 << 20, 'bytes per Kafka produce request'), default: 512 << 10 },
  { key: 'kafkaLingerMs', flag: 'kafka-linger', field: duration(0, 60_000, 'wait for a fuller Kafka batch'), default: 20 },
  { key: 'kafkaTls', flag: 'kafka-tls', field: boolean('TLS to the Kafka brokers'), default: false, bool: true },
  { key: 'kafkaTlsCa', flag: 'kafka-tls-ca', field: emptyOr(text('PEM file of the CAs to trust')), default: '' },
  { key: 'kafkaTlsCert', flag: 'kafka-tls-cert', field: emptyOr(text('PEM file of the client certificate chain')), default: '' },
  { key: 'kafkaTlsKey', flag: 'kafka-tls-key', field: emptyOr(text('PEM file of the client key')), default: '' },
  { key: 'kafkaSaslMechanism', flag: 'kafka-sasl-mechanism', field: oneOf(['', 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const, 'Kafka SASL mechanism'), default: '' },
  { key: 'kafkaSaslUsername', flag: 'kafka-sasl-username', field: emptyOr(text('Kafka SASL user name')), default: '' },
  { key: 'kafkaSaslPassword', flag: 'kafka-sasl-password', field: emptyOr(text('Kafka SASL password')), default: '', defaultText: '' },
  { key: 'passiveRtt', flag: 'passive-rtt', field: emptyOr(text('interface name', 15, { expects: 'an interface name (or any), or empty for none', test: (v) => /^[^\s/:]+$/.test(v) })), default: '' },
  { key: 'passiveRttMaxPrefixes', flag: 'passive-rtt-max-prefixes', field: integer(1, 4096, 'remote prefixes with their own passive RTT histogram'), default: 256 },
  { key: 'passiveRttV4Prefix', flag: 'passive-rtt-v4-prefix', field: integer(8, 32, 'IPv4 prefix length of the passive RTT histograms'), default: 24 },
  { key: 'passiveRttV6Prefix', flag: 'passive-rtt-v6-prefix', field: integer(16, 128, 'IPv6 prefix length of the passive RTT histograms'), default: 48 },
]

/** Cross-option rules of the Kafka options (one message naming the flags). */
function checkKafka(c: CollectorConfig): void {
  // Either option of a pair may be the one set wrongly (flag, variable or file): name both.
  const both = (a: string, b: string): string => `--${a} (${envName(a)}) and --${b} (${envName(b)})`
  if ((c.kafkaTlsCert === '') !== (c.kafkaTlsKey === '')) throw configError(both('kafka-tls-cert', 'kafka-tls-key'), 'both set (mutual TLS) or neither', `${c.kafkaTlsCert || '(none)'} / ${c.kafkaTlsKey || '(none)'}`)
  if ((c.kafkaSaslMechanism === '') !== (c.kafkaSaslUsername === '')) throw configError(both('kafka-sasl-mechanism', 'kafka-sasl-username'), 'both set (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with a user name) or neither', `${c.kafkaSaslMechanism || '(none)'} / ${c.kafkaSaslUsername || '(none)'}`)
}

/** Documentation of each option for `--help`, with its env variables and default. */
export const OPTION_DOCS: Readonly<Record<string, string>> = {
  output: 'Directory of the archive tree: <output>/YYYY/MM/DD/<UUID>.<seq>.jsonl.zst',
  reps: 'Polls to run; 0 = until SIGTERM/SIGINT',
  interval: 'Poll interval (10 = 10 ms; also 500us, 1s)',
  'flush-interval': 'Data reaches the files at least this often; a crash loses at most this much',
  'rotate-age': 'A file older than this is finished; the connection continues in the next sequence file',
  'max-open-files': 'Archive files open at once (lowered to the descriptor limit minus 512); the least recently written are finished beyond it',
  'uuid-prefix-file': 'File holding the UUID prefix (default <hostname>_<boot time>_unsafe)',
  'exclude-srcport': 'Local port not archived (repeatable, comma lists)',
  'exclude-dstip': 'Peer address or CIDR network not archived (repeatable, comma lists)',
  'exclude-local': 'Skip loopback, link-local, multicast and unspecified addresses (-exclude-local=false to keep them)',
  'anonymize-ip': 'none, or netblock: archived addresses cut to their /24 (v4) or /48 (v6), local interfaces kept',
  prom: 'Prometheus /metrics and /healthz listen address (:PORT = all interfaces; empty: no metrics server)',
  eventsocket: 'Unix socket path for M-Lab event socket clients (empty: none)',
  'eventsocket-mode': 'File mode of the event socket, octal (0660: owner and group)',
  'eventsocket-queue-bytes': 'Bytes queued for one event-socket client (besides the initial open connections) before it is dropped as stalled',
  'metrics-port': 'Local port whose connections and bytes get their own metrics (repeatable, comma lists, at most 64)',
  netns: 'Network namespace to watch (a path such as /var/run/netns/NAME; all: every namespace of the host; empty: the current one)',
  'max-cpu': 'CPU budget of the poller thread, a fraction of one core (0.2 = 20%): the interval stretches to stay within it (default: none)',
  'poll-mode': 'netlink (dump every socket each poll), bpf (a BPF iterator reports only changed sockets; root or CAP_BPF+CAP_PERFMON, kernel BTF; fails naming what is missing) or auto (bpf where possible, else netlink with one warning)',
  'log-format': 'text (one human-readable line per event) or json',
  'log-level': 'debug, info, warn or error',
  'kafka-brokers': 'Kafka brokers host:port (repeatable, comma lists; empty: no Kafka export): one message per record, key = UUID, headers host, netns, kind',
  'kafka-topic': 'Kafka topic of the records (auto-created where the broker allows)',
  'kafka-format': 'Message value: archival (the M-Lab ArchivalRecord line) or decoded (flat JSON of the decoded fields with a schema version, for JSONEachRow)',
  'kafka-compression': 'none, gzip, lz4 or zstd (of each record batch)',
  'kafka-buffer-bytes': 'Bytes of records queued while the broker is slow or away; beyond it the oldest are dropped (counted)',
  'kafka-sample': 'all; opens-closes (only opens and closes); or N: every Nth poll\'s changes (opens and closes always). The archive stays complete',
  'kafka-batch-bytes': 'Bytes of keys and values per produce request at most (one request in flight per partition)',
  'kafka-linger': 'A partition\'s partial batch is sent after this long (20 = 20 ms)',
  'kafka-tls': 'TLS to the brokers (rustls; the system CAs unless --kafka-tls-ca)',
  'kafka-tls-ca': 'PEM file of the certificate authorities to trust (implies --kafka-tls)',
  'kafka-tls-cert': 'PEM file of the client certificate chain for mutual TLS (with --kafka-tls-key; implies --kafka-tls)',
  'kafka-tls-key': 'PEM file of the client private key (PKCS#8, PKCS#1 or SEC1)',
  'kafka-sasl-mechanism': 'SASL: PLAIN (use with TLS), SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)',
  'kafka-sasl-username': 'SASL user name',
  'kafka-sasl-password': 'SASL password (prefer the KAFKA_SASL_PASSWORD variable to a flag: flags show in ps)',
  'passive-rtt': 'Interface whose packets give passive RTTs (TCP timestamps; any: all; needs CAP_NET_RAW): per closed connection, the passive minimum beside the kernel\'s tcpi_min_rtt in <output>/passive-rtt/YYYY/MM/DD/passive-rtt.jsonl, and histograms by remote prefix on /metrics (empty: off)',
  'passive-rtt-max-prefixes': 'Remote prefixes with their own passive RTT histogram; samples of others go to prefix="other" (counted)',
  'passive-rtt-v4-prefix': 'IPv4 prefix length of the passive RTT histograms',
  'passive-rtt-v6-prefix': 'IPv6 prefix length of the passive RTT histograms',
}

/** The environment variable names of a flag name (M-Lab's rule: upper-case, non-alphanumerics to `_`). */
export function envName(flag: string): string {
  return flag.toUpperCase().replace(/[^A-Z0-9]/g, '_')
}

/** What was said, before checking: per option, the text and its source. */
export interface RawCollectorConfig {
  values: Map<keyof CollectorConfig, { text?: string; value?: unknown; source: ConfigSource; name: string }>
  /** `--config FILE`. */
  configFile?: string
  /** `--print-config`. */
  printConfig: boolean
  /** `--help`. */
  help: boolean
}

const BY_NAME = new Map<string, OptionSpec>()
for (const o of COLLECTOR_OPTIONS) for (const n of [o.flag, ...(o.aliases ?? [])]) BY_NAME.set(n, o)

function usage(message: string): TcpinfoError {
  return new TcpinfoError('ERR_CONFIG', message)
}

/**
 * Reads flags (Go style: `-flag`, `--flag`, `=value` or the next argument; booleans alone
 * or `=true|false`), then the environment for options no flag gave, then the config file.
 * @throws {TcpinfoError} `ERR_CONFIG` for an unknown flag or a missing value.
 */
export function readRawConfig(argv: readonly string[], env: NodeJS.ProcessEnv): RawCollectorConfig {
  const raw: RawCollectorConfig = { values: new Map(), printConfig: false, help: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const m = /^(--?)([a-zA-Z][\w.-]*)(?:=(.*))?$/s.exec(arg)
    if (!m) throw usage(`unexpected argument ${echo(arg)} (flags start with - or --)`)
    const dashes = m[1] as string
    const name = m[2] as string
    let value = m[3]
    if (name === 'help' || name === 'h') {
      raw.help = true
      continue
    }
    if (name === 'print-config') {
      raw.printConfig = value === undefined || value === 'true'
      continue
    }
    const spec = name === 'config' ? undefined : BY_NAME.get(name) ?? (name.startsWith('no-') ? boolSpec(name.slice(3)) : undefined)
    if (name === 'config') {
      value ??= argv[++i]
      if (value === undefined) throw usage('-config needs a value: a JSON or YAML file')
      raw.configFile = value
      continue
    }
    if (!spec) {
      const near = suggest(name, [...BY_NAME.keys(), 'config', 'print-config'])
      throw usage(`unknown flag ${dashes}${name}${near ? ` (did you mean --${near}?)` : ''}`)
    }
    if (spec.bool && value === undefined) value = name.startsWith('no-') ? 'false' : 'true'
    value ??= argv[++i]
    if (value === undefined) throw usage(`--${spec.flag} needs a value`)
    const prev = raw.values.get(spec.key)
    const text = spec.repeatable && prev?.source === 'flag' ? `${prev.text},${value}` : value
    raw.values.set(spec.key, { text, source: 'flag', name: `${dashes}${name}` })
  }
  for (const spec of COLLECTOR_OPTIONS) {
    if (raw.values.has(spec.key)) continue
    for (const n of [spec.flag, ...(spec.aliases ?? [])]) {
      const e = env[envName(n)]
      if (e !== undefined) {
        raw.values.set(spec.key, { text: e, source: 'env', name: envName(n) })
        break
      }
    }
  }
  raw.configFile ??= env.CONFIG
  return raw
}

function boolSpec(name: string): OptionSpec | undefined {
  const s = BY_NAME.get(name)
  return s?.bool ? s : undefined
}

/**
 * YAML text to a value. A warning (an unknown directive, say) is an error too: the `yaml`
 * package would otherwise print it to stderr past the logger (found by
 * __test__/config-fuzz.spec.ts).
 */
function parseYaml(text: string): unknown {
  const doc = parseDocument(text)
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem) throw problem
  return doc.toJS()
}

/** Reads a JSON or YAML config file into option values (keys are flag names or aliases). */
function readConfigFile(path: string): Map<keyof CollectorConfig, { value: unknown; name: string }> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw usage(`cannot read config file ${path}: ${(e as Error).message}`)
  }
  let doc: unknown
  try {
    doc = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text)
  } catch (e) {
    throw usage(`config file ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`)
  }
  if (doc === null || doc === undefined) return new Map()
  if (typeof doc !== 'object' || Array.isArray(doc)) throw usage(`config file ${path} must hold a mapping of option names to values, got ${echo(doc)}`)
  const out = new Map<keyof CollectorConfig, { value: unknown; name: string }>()
  for (const [k, v] of Object.entries(doc)) {
    const spec = BY_NAME.get(k) ?? COLLECTOR_OPTIONS.find((o) => o.key === k)
    if (!spec) {
      const near = suggest(k, [...BY_NAME.keys()])
      throw usage(`unknown option ${k} in config file ${path}${near ? ` (did you mean ${near}?)` : ''}`)
    }
    out.set(spec.key, { value: v, name: `${k} in ${path}` })
  }
  return out
}

/**
 * Checks everything that was said and fills in the defaults: the only place that makes
 * a {@link CollectorConfig}.
 * @throws {TcpinfoError} `ERR_CONFIG` naming the flag, variable or file entry.
 */
export function resolveCollectorConfig(raw: RawCollectorConfig): { config: CollectorConfig; sources: Record<string, ConfigSource> } {
  const file = raw.configFile ? readConfigFile(raw.configFile) : new Map()
  const out: Record<string, unknown> = {}
  const sources: Record<string, ConfigSource> = {}
  for (const spec of COLLECTOR_OPTIONS) {
    const said = raw.values.get(spec.key)
    const inFile = file.get(spec.key)
    if (said?.text !== undefined) {
      out[spec.key] = parseField(spec.field, said.text, said.name)
      sources[spec.key] = said.source
    } else if (inFile) {
      // A single value where a list goes is a list of one (`exclude-srcport: 22`).
      const v = spec.repeatable && !Array.isArray(inFile.value) && typeof inFile.value !== 'string' ? [inFile.value] : inFile.value
      out[spec.key] = typeof v === 'string' ? parseField(spec.field, v, inFile.name) : checkField(spec.field, v, inFile.name)
      sources[spec.key] = 'file'
    } else {
      out[spec.key] = spec.default
      sources[spec.key] = 'default'
    }
  }
  checkKafka(out as unknown as CollectorConfig)
  return { config: Object.freeze(out) as unknown as CollectorConfig, sources }
}

/** The help text of the options: flag, value, M-Lab alias, environment variables, default. */
export function collectorOptionsHelp(): string {
  return COLLECTOR_OPTIONS.map((o) => {
    const names = [o.flag, ...(o.aliases ?? [])]
    const env = names.map(envName).join(', ')
    const def = o.default === undefined || o.default === '' ? '' : ` (default ${o.defaultText ?? (Array.isArray(o.default) ? (o.default.length ? o.default.join(',') : 'none') : String(o.default))})`
    return `  --${o.flag}${o.bool ? '[=false]' : ' VALUE'}${o.aliases ? ` | -${o.aliases.join(' | -')}` : ''}\n      ${OPTION_DOCS[o.flag] ?? o.field.doc}${def}. Env: ${env}.`
  }).join('\n')
}
