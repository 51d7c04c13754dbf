/**
 * `watch()`: the async iterator of polls. One native `next()` per poll, one in flight at
 * a time (the native side requires it), and a deterministic close: `break`, `return()`,
 * `await using` or the abort signal stop the poller thread and free its sockets.
 */
import { callNative, native, normalizeNativeError, type NativePoller } from '../native.js'
import { Batch } from './batch.js'
import { checkWatchOptions, toNativeOptions, type WatchOptions } from './options.js'
import { resolveUuidPrefix } from './uuid.js'

const asyncDispose: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')

/** Rejection of `next()` after the signal aborted, like Node's own `AbortError`. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR'
  constructor(reason: unknown) {
    super('The watch was aborted', { cause: reason })
    this.name = 'AbortError'
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(signal.reason)
}

/** The iterator returned by {@link watch}. */
export interface Watcher extends AsyncIterableIterator<Batch>, AsyncDisposable {
  /** Stops polling now; pending and later `next()` calls end the iteration. */
  close(): void
}

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
  const { signal } = checked
  let poller: NativePoller | undefined
  let prefix: string | undefined
  let closed = false
  let queue: Promise<unknown> = Promise.resolve()

  const close = (): void => {
    closed = true
    poller?.close()
    poller = undefined
    signal?.removeEventListener('abort', close)
  }
  signal?.addEventListener('abort', close, { once: true })

  const pull = async (): Promise<IteratorResult<Batch>> => {
    throwIfAborted(signal)
    if (closed) return { done: true, value: undefined }
    if (!poller) {
      prefix = resolveUuidPrefix(checked)
      const NativePollerClass = native().NativePoller
      poller = callNative(() => new NativePollerClass(nativeOptions))
    }
    let b
    try {
      b = await poller.next()
    } catch (e) {
      close()
      throw normalizeNativeError(e)
    }
    throwIfAborted(signal)
    if (b === null || closed) {
      close()
      return { done: true, value: undefined }
    }
    return { done: false, value: new Batch(b, prefix ?? '') }
  }

  const watcher: Watcher = {
    next() {
      // Serialise: the native poller allows one next() in flight.
      const result = queue.then(pull)
      queue = result.catch(() => undefined)
      return result
    },
    async return() {
      close()
      return { done: true, value: undefined }
    },
    close,
    [Symbol.asyncIterator]() {
      return this
    },
    async [asyncDispose]() {
      close()
    },
  }
  return watcher
}
