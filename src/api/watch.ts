/**
 * `watch()`: the async iterator of polls. One native `next()` per poll, one in flight at
 * a time (the native side requires it), and a deterministic close: `break`, `return()`,
 * `await using` or the abort signal stop the poller thread and free its sockets.
 */
import { native } from '../native.js'
import { Batch } from './batch.js'
import { nativeIterator, type NativeIterator } from './native-iterator.js'
import { checkWatchOptions, toNativeOptions, type WatchOptions } from './options.js'
import { resolveUuidPrefix } from './uuid.js'

export { AbortError } from './native-iterator.js'

/** The iterator returned by {@link watch}. */
export type Watcher = NativeIterator<Batch>

/**
 * Watches every TCP socket of the host (or of `options.netns`), one batch per poll.
 * The first batch reports every current connection as opened.
 *
 * @example
 * for await (const batch of watch({ intervalMs: 100 })) {
 *   for (const c of batch.changed) console.log(c.uuid, c.tcpInfo?.bytesAcked)
 * }
 * @throws {TcpinfoError} `ERR_CONFIG` for bad options (synchronously); `ERR_SOCKET` or
 * `ERR_NETNS` from the first `next()` when the kernel cannot be watched. An aborted
 * signal rejects `next()` with an `AbortError`.
 */
export function watch(options: WatchOptions = {}): Watcher {
  const checked = checkWatchOptions(options)
  const nativeOptions = toNativeOptions(checked)
  let prefix = ''
  const open = () => {
    prefix = resolveUuidPrefix(checked)
    const NativePollerClass = native().NativePoller
    return new NativePollerClass(nativeOptions)
  }
  return nativeIterator(open, (b) => new Batch(b, prefix), checked.signal).iterator
}
