/**
 * The lifecycle every native stream shares (`watch()`'s poller, `rtt()`'s capture): the
 * native object is opened on the first `next()`, one `next()` is in flight at a time (the
 * native side requires it), `break`/`return()`/`close()`/`await using`/the abort signal
 * close it deterministically, and native errors become `TcpinfoError`s.
 */
import { callNative, normalizeNativeError } from '../native.js'

const asyncDispose: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')

/** Rejection of `next()` after the signal aborted, like Node's own `AbortError`. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR'
  constructor(reason: unknown) {
    super('The watch was aborted', { cause: reason })
    this.name = 'AbortError'
  }
}

/** A native stream: `next()` resolves `null` once it has ended. */
export interface NativeStream<B> {
  next(): Promise<B | null>
  close(): void
}

/** An async iterator over a native stream, closable at any time. */
export interface NativeIterator<T> extends AsyncIterableIterator<T>, AsyncDisposable {
  /** Stops now; pending and later `next()` calls end the iteration. */
  close(): void
}

/**
 * Iterates `open()`'s stream, converting each item with `wrap`. `onClose` runs once the
 * stream is closed (for callers holding more state); `current()` gives the open stream.
 */
export function nativeIterator<B, T>(
  open: () => NativeStream<B>,
  wrap: (b: B) => T,
  signal: AbortSignal | undefined,
): { iterator: NativeIterator<T>; current: () => NativeStream<B> | undefined } {
  let stream: NativeStream<B> | undefined
  let closed = false
  let queue: Promise<unknown> = Promise.resolve()

  const close = (): void => {
    closed = true
    stream?.close()
    stream = undefined
    signal?.removeEventListener('abort', close)
  }
  signal?.addEventListener('abort', close, { once: true })
  const throwIfAborted = (): void => {
    if (signal?.aborted) throw new AbortError(signal.reason)
  }

  const pull = async (): Promise<IteratorResult<T>> => {
    throwIfAborted()
    if (closed) return { done: true, value: undefined }
    stream ??= callNative(open)
    let b
    try {
      b = await stream.next()
    } catch (e) {
      close()
      throw normalizeNativeError(e)
    }
    throwIfAborted()
    if (b === null || closed) {
      close()
      return { done: true, value: undefined }
    }
    return { done: false, value: wrap(b) }
  }

  const iterator: NativeIterator<T> = {
    next() {
      // Serialise: a native stream allows one next() in flight.
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
  return { iterator, current: () => stream }
}
