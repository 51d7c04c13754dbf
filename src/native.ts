/**
 * The only module that loads the native addon (generated loader `native/binding.cjs`).
 * Everything else imports the `Native*` types and functions from here. Native errors
 * carry their stable code as a `[ERR_X]` prefix; {@link callNative} turns them into
 * {@link TcpinfoError}s with `code` set.
 */
import { createRequire } from 'node:module'

import { TcpinfoError, type TcpinfoErrorCode } from './errors.js'
import type * as Binding from '../native/binding.cjs'

export type NativeBatch = Binding.NativeBatch
export type NativePollerOptions = Binding.NativePollerOptions
export type NativeWarning = Binding.NativeWarning
export type NativePoller = Binding.NativePoller
export type NativePollStats = Binding.NativePollStats
export type NativePortStats = Binding.NativePortStats
export type NativeVocabulary = Binding.NativeVocabulary
export type NativeArchiveWriter = Binding.NativeArchiveWriter
export type NativeArchiveBatch = Binding.NativeArchiveBatch
export type NativeArchiveError = Binding.NativeArchiveError
export type NativeArchiveReader = Binding.NativeArchiveReader
export type NativeRtt = Binding.NativeRtt
export type NativeRttBatch = Binding.NativeRttBatch
export type NativeRttOptions = Binding.NativeRttOptions
export type NativeAnonymizer = Binding.NativeAnonymizer
export type NativeKafkaProducer = Binding.NativeKafkaProducer
export type NativeRttMonitor = Binding.NativeRttMonitor
export type NativeRttMonitorOptions = Binding.NativeRttMonitorOptions

/** Order of the counters in `NativeBatch.stats` (mirrors `NativeBatch::new` in the binding). */
export const NATIVE_STATS_FIELDS = [
  'dumpNanos',
  'recvCalls',
  'bytes',
  'messages',
  'malformed',
  'destroyEvents',
  'destroyOverruns',
  'lateDestroyEvents',
  'droppedCloses',
  'skippedPolls',
  'tracked',
  'trackerBytes',
  'reusedBuffers',
] as const

/** Order of the counters in `NativeRttBatch.stats` (mirrors `stats()` in native_rtt.rs). */
export const RTT_STATS_FIELDS = [
  'frames',
  'tcp',
  'truncated',
  'malformed',
  'notIp',
  'notTcp',
  'fragments',
  'unsupportedLink',
  'segments',
  'noTimestamp',
  'zeroTimestamp',
  'flowsFull',
  'unidirectional',
  'tsvalRepeats',
  'staleTsvals',
  'rateLimited',
  'tsvalsStored',
  'tsvalsFull',
  'samples',
  'negativeRtt',
  'tsvalsExpired',
  'flowsExpired',
  'flows',
  'tsvals',
  'ringPackets',
  'ringDrops',
  'ringFreezes',
  'fileRecords',
  'fileOtherBlocks',
  'fileTruncatedBlocks',
  'droppedSamples',
] as const

/** Order of the counters of `NativeRttMonitor.stats()` (mirrors native_rtt_monitor.rs). */
export const RTT_MONITOR_STATS_FIELDS = ['frames', 'truncated', 'malformed', 'segments', 'samples', 'flowsFull', 'tsvalsFull', 'flows', 'ringPackets', 'ringDrops', 'localSamples', 'prefixOverflow'] as const

let binding: typeof Binding | undefined
let loadError: TcpinfoError | undefined

/** Loads the addon once; on failure every later call rethrows the same clear error. */
export function native(): typeof Binding {
  if (binding) return binding
  if (loadError) throw loadError
  if (process.platform !== 'linux') {
    loadError = new TcpinfoError(
      'ERR_UNSUPPORTED_PLATFORM',
      `tcpinfo needs Linux netlink inet_diag; this platform is ${process.platform}-${process.arch}`,
    )
    throw loadError
  }
  try {
    binding = createRequire(import.meta.url)('../native/binding.cjs') as typeof Binding
    return binding
  } catch (cause) {
    const suffix = platformSuffix()
    loadError = new TcpinfoError(
      'ERR_NATIVE_MISSING',
      `no tcpinfo native addon for ${suffix}: the prebuilt package tcpinfo-${suffix} is not installed (reinstall without --omit=optional) ` +
        `or does not exist for this platform; build it from source with 'npm rebuild tcpinfo' (needs Rust, https://rustup.rs), ` +
        `or 'npm run build:native' in a clone`,
      { cause },
    )
    throw loadError
  }
}

/** napi-rs platform suffix of this machine, e.g. `linux-x64-gnu` (as scripts/native-target.cjs). */
function platformSuffix(): string {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  const abi = process.platform === 'linux' ? (report?.header?.glibcVersionRuntime ? '-gnu' : '-musl') : ''
  return `${process.platform}-${process.arch}${abi}`
}

const CODE_PREFIX = /^\[(ERR_[A-Z_]+)\] /

/** Runs a native call, converting coded native errors into {@link TcpinfoError}. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    throw normalizeNativeError(e)
  }
}

/** Converts a native error (reason `[ERR_X] message`) into a {@link TcpinfoError}. */
export function normalizeNativeError(e: unknown): unknown {
  if (e instanceof TcpinfoError || !(e instanceof Error)) return e
  const m = CODE_PREFIX.exec(e.message)
  if (!m) return new TcpinfoError('ERR_INTERNAL', e.message, { cause: e })
  return new TcpinfoError(m[1] as TcpinfoErrorCode, e.message.slice(m[0].length), { cause: e })
}
