/**
 * The TypeScript event-socket client: `events(path, { signal })` is an async iterator of
 * typed events read from an M-Lab v1 event socket (ours or M-Lab's). When the socket is
 * missing or the server goes away it reconnects with exponential backoff (with jitter);
 * it ends only when `signal` aborts (or, with `reconnect: false`, when the stream ends).
 */
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'

import { CLOSE, OPEN, type MlabSockId } from './protocol.js'

/** One event of the stream. */
export interface FlowEvent {
  /** `open` (M-Lab `Event: 0`) or `close` (`Event: 1`). */
  type: 'open' | 'close'
  /** The timestamp as sent (RFC 3339 with ns). */
  timestamp: string
  /** The timestamp (ms resolution). */
  time: Date
  /** M-Lab UUID of the connection (its archive file name). */
  uuid: string
  /** Socket id of an open event; `undefined` for a close. */
  id?: MlabSockId
  /** The line as received. */
  line: string
}

/** Options of {@link events}. */
export interface EventsOptions {
  /** Ends the iteration (and closes the connection). */
  signal?: AbortSignal
  /** Reconnect after the stream ends or fails (default true). */
  reconnect?: boolean
  /** First backoff delay, ms (default 100); doubles up to `maxBackoffMs` (default 5000). */
  minBackoffMs?: number
  maxBackoffMs?: number
  /** Called on each connection attempt's outcome (for logging). */
  onState?: (state: { connected: boolean; error?: Error; retryInMs?: number }) => void
}

/** Parses one protocol line; `undefined` if it is not a v1 event. */
export function parseEvent(line: string): FlowEvent | undefined {
  let o: unknown
  try {
    o = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof o !== 'object' || o === null) return undefined
  const e = o as { Event?: unknown; Timestamp?: unknown; UUID?: unknown; ID?: unknown }
  if ((e.Event !== OPEN && e.Event !== CLOSE) || typeof e.Timestamp !== 'string' || typeof e.UUID !== 'string') return undefined
  const ev: FlowEvent = { type: e.Event === OPEN ? 'open' : 'close', timestamp: e.Timestamp, time: new Date(e.Timestamp), uuid: e.UUID, line }
  if (e.ID && typeof e.ID === 'object') ev.id = e.ID as MlabSockId
  return ev
}

/**
 * Events from the event socket at `path`.
 * @example
 * for await (const e of events('/run/tcpinfo/events.sock', { signal })) console.log(e.type, e.uuid)
 */
export async function* events(path: string, options: EventsOptions = {}): AsyncGenerator<FlowEvent, void, undefined> {
  const { signal, reconnect = true, minBackoffMs = 100, maxBackoffMs = 5000 } = options
  let backoff = minBackoffMs
  while (!signal?.aborted) {
    const socket = connect(path)
    const onAbort = (): void => {
      socket.destroy()
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    let failure: Error | undefined
    socket.on('error', (e) => {
      failure = e
    })
    try {
      const connected = await new Promise<boolean>((resolve) => {
        socket.once('connect', () => resolve(true))
        socket.once('close', () => resolve(false))
      })
      if (connected) {
        backoff = minBackoffMs
        options.onState?.({ connected: true })
        const rl = createInterface({ input: socket, crlfDelay: Infinity })
        for await (const line of rl) {
          const ev = parseEvent(line)
          if (ev) yield ev
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      socket.destroy()
    }
    if (signal?.aborted || !reconnect) return
    const delay = Math.round(backoff * (0.5 + Math.random() / 2))
    options.onState?.({ connected: false, ...(failure ? { error: failure } : {}), retryInMs: delay })
    backoff = Math.min(maxBackoffMs, backoff * 2)
    try {
      await sleep(delay, undefined, signal ? { signal } : {})
    } catch {
      return
    }
  }
}
