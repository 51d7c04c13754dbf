/**
 * The event socket as a sink: a unix stream socket serving M-Lab's v1 protocol
 * (./protocol.ts) to any number of clients. Better than M-Lab's server where it is weak:
 * a client that connects gets open events for the connections already open, then the
 * live stream; each client has its own bounded queue (the socket's write buffer), and a
 * client that stops reading is dropped (counted, logged once per minute), never waited on:
 * at each poll, before this poll's events are written, a client whose backlog is still
 * over its bound is dropped. A client's memory is thus at most its bound plus one poll's
 * events (plus the kernel's socket buffer); its bound is `maxClientBytes` plus the size of
 * the initial state it was sent, so a late client has time to read that. `offer()` is one pass over the batch's index,
 * touching only the opened and closed records, and one write per client per poll.
 */
import { chmodSync, lstatSync, renameSync, unlinkSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'

import type { Batch } from '../api/batch.js'
import { TcpinfoError } from '../errors.js'
import type { Logger } from '../log.js'
import type { Sink, SinkCounters } from '../sinks/sink.js'
import { FLAG_HAS_RECORD, FLAG_UNSEEN, INDEX } from '../uapi.js'
import { CLOSE, eventLine, goTime, IDM_ID_END, OPEN, sockIdJson, sockIdOf } from './protocol.js'

/** Clients at once by default; more are refused (counted). */
export const EVENTSOCKET_MAX_CLIENTS = 1024
const KIND_OPENED = 0
const KIND_CLOSED = 2

/** Options of {@link EventSocketServer}. */
export interface EventSocketOptions {
  /** Socket file path; a stale socket file there is replaced. */
  path: string
  /** File mode of the socket (default 0o660). */
  mode?: number
  /** Bytes queued for one client beyond which it is dropped (default 1 MiB, plus the initial state it was sent). */
  maxClientBytes?: number
  /** Clients at once; more are refused (default 1024). */
  maxClients?: number
  log?: Logger
}

/** Counters of the event socket. */
export interface EventSocketStats {
  clients: number
  clientsAccepted: number
  /** Dropped because their queue filled (they stopped reading). */
  clientsDropped: number
  /** Refused beyond `maxClients`. */
  clientsRefused: number
  /** Disconnected by themselves (including write errors such as EPIPE). */
  clientsDisconnected: number
  /** Event lines delivered to clients' sockets (one per event per client). */
  eventsSent: number
  /** Events that never reached a client because it was dropped (still queued for it, or of the poll it was dropped at). */
  eventsDropped: number
  /** Open events and close events produced. */
  opens: number
  closes: number
  /** Connections currently open (sent to late clients first). */
  openConnections: number
}

interface Client {
  socket: Socket
  /** Its queue bound: maxClientBytes plus the initial state. */
  limit: number
  /** Characters written so far (the lines are ASCII: bytes). */
  written: number
  /** Writes not yet flushed to the kernel: [end offset in `written`, events]. */
  pending: [number, number][]
}

export class EventSocketServer implements Sink {
  readonly name = 'eventsocket'
  readonly path: string
  readonly #mode: number
  readonly #maxBytes: number
  readonly #maxClients: number
  readonly #log: Logger | undefined
  readonly #clients = new Set<Client>()
  /** UUID → its open event line. */
  readonly #open = new Map<string, string>()
  #server: Server | undefined
  #closed = false
  #offered = 0
  readonly #s = { clientsAccepted: 0, clientsDropped: 0, clientsRefused: 0, clientsDisconnected: 0, eventsSent: 0, eventsDropped: 0, opens: 0, closes: 0 }

  constructor(options: EventSocketOptions) {
    this.path = options.path
    this.#mode = options.mode ?? 0o660
    this.#maxBytes = options.maxClientBytes ?? 1 << 20
    this.#maxClients = options.maxClients ?? EVENTSOCKET_MAX_CLIENTS
    this.#log = options.log
  }

  /**
   * Binds the socket: under a temporary name, chmod, then renamed over `path` (so no client
   * ever sees it with the wrong mode, and a stale socket file is replaced atomically).
   * @throws {TcpinfoError} `ERR_CONFIG` when `path` exists and is not a socket, or cannot be bound.
   */
  async listen(): Promise<void> {
    try {
      if (!lstatSync(this.path).isSocket()) throw new TcpinfoError('ERR_CONFIG', `--eventsocket ${this.path} exists and is not a socket; refusing to replace it`)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    }
    const tmp = `${this.path}.${process.pid}.tmp`
    const server = createServer((s) => this.#accept(s))
    try {
      try {
        unlinkSync(tmp)
      } catch {
        // not there
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(tmp, () => {
          server.off('error', reject)
          resolve()
        })
      })
      chmodSync(tmp, this.#mode)
      renameSync(tmp, this.path)
    } catch (e) {
      server.close()
      if (e instanceof TcpinfoError) throw e
      throw new TcpinfoError('ERR_CONFIG', `--eventsocket ${this.path}: ${(e as Error).message}`, { cause: e })
    }
    server.on('error', (e) => this.#log?.limited('eventsocket-server', 60_000, 'error', 'eventsocket', `server error: ${e.message}`))
    this.#server = server
  }

  #accept(socket: Socket): void {
    if (this.#closed || this.#clients.size >= this.#maxClients) {
      this.#s.clientsRefused++
      this.#log?.limited('eventsocket-refused', 60_000, 'warn', 'eventsocket', `refused a client: ${this.#maxClients} clients already connected`)
      socket.destroy()
      return
    }
    this.#s.clientsAccepted++
    let initial = ''
    for (const line of this.#open.values()) initial += line
    const client: Client = { socket, limit: this.#maxBytes + initial.length, written: 0, pending: [] }
    this.#clients.add(client)
    socket.on('error', () => undefined)
    socket.on('close', () => {
      if (this.#clients.delete(client)) this.#s.clientsDisconnected++
    })
    socket.resume() // whatever a client sends is discarded
    if (initial) this.#send(client, initial, this.#open.size)
  }

  /** Writes to one client, remembering which events are still queued. */
  #send(client: Client, text: string, events: number): void {
    const s = client.socket
    if (s.destroyed) return
    s.write(text)
    client.written += text.length
    client.pending.push([client.written, events])
    const flushed = client.written - s.writableLength
    while (client.pending.length > 0 && (client.pending[0] as [number, number])[0] <= flushed) client.pending.shift()
    this.#s.eventsSent += events
  }

  /** Drops the clients whose backlog is over their bound; `events` were about to be sent to each. */
  #dropStalled(events: number): void {
    for (const c of this.#clients) {
      const queued = c.socket.writableLength
      if (queued <= c.limit) continue
      this.#clients.delete(c)
      this.#s.clientsDropped++
      // This poll's events, and those still queued for it (a partly flushed write counts whole).
      const flushed = c.written - queued
      let lost = events
      for (const [end, n] of c.pending) if (end > flushed) lost += n
      this.#s.eventsDropped += lost
      this.#s.eventsSent -= lost - events
      this.#log?.limited('eventsocket-dropped', 60_000, 'warn', 'eventsocket', `dropped a client that stopped reading (${queued} bytes queued)`, { dropped: this.#s.clientsDropped })
      c.socket.destroy()
    }
  }

  offer(batch: Batch): boolean {
    this.#offered++
    const index = batch.index
    const n = batch.size
    if (n === 0) {
      this.#dropStalled(0)
      return true
    }
    const view = new DataView(index.buffer, index.byteOffset, index.byteLength)
    const payloads = batch.payloads
    let time: string | undefined
    let out = ''
    let events = 0
    for (let i = 0, off = 0; i < n; i++, off += INDEX.entryLen) {
      const kind = view.getUint8(off)
      if (kind !== KIND_OPENED && kind !== KIND_CLOSED) continue
      time ??= goTime(batch.timestampNs)
      const flags = view.getUint8(off + INDEX.flags)
      const cookie = view.getBigUint64(off + INDEX.cookie, true)
      const uuid = `${batch.uuidPrefix}_${cookie.toString(16).toUpperCase().padStart(16, '0')}`
      const opening = kind === KIND_OPENED || (flags & FLAG_UNSEEN) !== 0
      if (opening) {
        let id: string | undefined
        const len = view.getUint32(off + INDEX.payloadLen, true)
        if (flags & FLAG_HAS_RECORD && len >= IDM_ID_END) {
          const start = view.getUint32(off + INDEX.payloadOff, true)
          id = sockIdJson(sockIdOf(payloads.subarray(start, start + IDM_ID_END), cookie))
        }
        const line = eventLine(OPEN, time, uuid, id)
        out += line
        events++
        this.#s.opens++
        if (kind === KIND_OPENED) this.#open.set(uuid, line)
      }
      if (kind === KIND_CLOSED) {
        this.#open.delete(uuid)
        out += eventLine(CLOSE, time, uuid)
        events++
        this.#s.closes++
      }
    }
    this.#dropStalled(events)
    if (events > 0) for (const c of this.#clients) this.#send(c, out, events)
    return true
  }

  stats(): EventSocketStats {
    return { clients: this.#clients.size, ...this.#s, openConnections: this.#open.size }
  }

  counters(): SinkCounters {
    let queuedBytes = 0
    for (const c of this.#clients) queuedBytes += c.socket.writableLength
    return { offered: this.#offered, droppedBatches: 0, droppedRecords: this.#s.eventsDropped, queuedItems: 0, queuedBytes }
  }

  unhealthy(): string | undefined {
    return this.#server?.listening === false && !this.#closed ? 'event socket not listening' : undefined
  }

  /** Stops accepting, disconnects every client (after what is queued, within `deadlineMs`) and removes the socket file. */
  async close(deadlineMs = 500): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const server = this.#server
    const clients = [...this.#clients]
    this.#clients.clear()
    for (const c of clients) c.socket.end()
    const timer = setTimeout(() => {
      for (const c of clients) c.socket.destroy()
    }, deadlineMs)
    await Promise.all(clients.map((c) => (c.socket.closed ? undefined : new Promise((r) => c.socket.once('close', r)))))
    clearTimeout(timer)
    if (server) await new Promise((r) => server.close(r))
    // net.Server.close unlinks the socket it bound (the temporary name); remove the renamed file.
    try {
      unlinkSync(this.path)
    } catch {
      // already gone
    }
  }
}
