/** Real loopback TCP servers and clients for the tests. */
import { once } from 'node:events'
import net from 'node:net'

import type { Batch, Connection, Watcher } from '../../src/index.js'

/** A server on 127.0.0.1 (kernel-chosen port) that reads everything and closes when the peer does. */
export async function startSink(host = '127.0.0.1'): Promise<{ server: net.Server; port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = []
  const server = net.createServer((s) => {
    sockets.push(s)
    s.on('data', () => {})
    s.on('end', () => s.end())
    s.on('error', () => {})
  })
  server.listen(0, host)
  await once(server, 'listening')
  // Never what keeps a test file's process alive: a CI run once hung for good after every
  // test of a file had passed, its worker waiting on one such listener left open.
  server.unref()
  return { server, port: (server.address() as net.AddressInfo).port, sockets }
}

/** Connects to `port` and resolves once established. */
export async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const c = net.connect(port, host)
  await once(c, 'connect')
  return c
}

/** Writes `n` bytes and waits until they are flushed to the kernel. */
export async function send(sock: net.Socket, n: number): Promise<void> {
  await new Promise<void>((resolve, reject) => sock.write(Buffer.alloc(n, 0x61), (e) => (e ? reject(e) : resolve())))
}

/** Ends the socket and waits until it is fully closed. */
export async function closeGracefully(sock: net.Socket): Promise<void> {
  sock.end()
  await once(sock, 'close')
}

/** The connection seen from `client`'s side (its local port, the server's port). */
export function isClientSide(client: net.Socket): (c: Connection) => boolean {
  const local = client.localPort
  const remote = client.remotePort
  return (c) => c.id?.srcPort === local && c.id?.dstPort === remote
}

/**
 * Pulls batches until `pick` finds a connection, or fails after `timeoutMs`.
 * Returns the connection and the batch it came in.
 */
export async function until(
  w: Watcher,
  pick: (b: Batch) => Connection | undefined,
  timeoutMs = 5000,
): Promise<{ conn: Connection; batch: Batch }> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const r = await w.next()
    if (r.done) throw new Error('watch ended')
    const conn = pick(r.value)
    if (conn) return { conn, batch: r.value }
  }
  throw new Error(`no matching connection within ${timeoutMs} ms`)
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
