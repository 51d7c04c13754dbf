/**
 * The metrics HTTP server: `GET /metrics` (Prometheus text exposition of one registry)
 * and `GET /healthz` (200 while polls arrive and no sink is stuck, else 503 with the
 * reason). A scrape flood stays cheap: the exposition is rendered at most once per
 * {@link MIN_RENDER_MS} (concurrent scrapes share one render), connections are capped,
 * and requests are answered without touching the poll path.
 */
import { createServer, type Server } from 'node:http'

import type { Registry } from 'prom-client'

import { TcpinfoError } from '../errors.js'

/** The exposition is re-rendered at most this often, ms. */
export const MIN_RENDER_MS = 100
/** Connections served at once. */
const MAX_CONNECTIONS = 64

/** Options of {@link MetricsServer}. */
export interface MetricsServerOptions {
  /** `host:port` or `:port` (all interfaces). */
  address: string
  registry: Registry
  /** `undefined` when healthy, else why not. */
  health: () => string | undefined
}

/** Splits `host:port` / `[v6]:port` / `:port`. */
export function splitAddress(address: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address)
  if (!m) throw new TcpinfoError('ERR_CONFIG', `--prom ${JSON.stringify(address)} is not host:port`)
  const host = m[1] ?? m[2] ?? ''
  return { host: host === '' ? undefined : host, port: Number(m[3]) }
}

export class MetricsServer {
  readonly #server: Server
  readonly #options: MetricsServerOptions
  #cached: { text: string; at: number } | undefined
  #rendering: Promise<string> | undefined
  /** Scrapes answered. */
  scrapes = 0

  private constructor(options: MetricsServerOptions) {
    this.#options = options
    this.#server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0]
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end()
        return
      }
      if (url === '/metrics') {
        this.scrapes++
        this.#render().then(
          (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
          (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`),
        )
      } else if (url === '/healthz') {
        const why = options.health()
        res.writeHead(why ? 503 : 200, { 'content-type': 'text/plain' }).end(why ? `unhealthy: ${why}\n` : 'ok\n')
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n')
      }
    })
    this.#server.maxConnections = MAX_CONNECTIONS
    this.#server.keepAliveTimeout = 5000
  }

  /**
   * Starts listening. @throws {TcpinfoError} `ERR_CONFIG` when the address cannot be bound.
   */
  static async listen(options: MetricsServerOptions): Promise<MetricsServer> {
    const m = new MetricsServer(options)
    const { host, port } = splitAddress(options.address)
    await new Promise<void>((resolve, reject) => {
      m.#server.once('error', (e) => reject(new TcpinfoError('ERR_CONFIG', `--prom ${options.address}: ${e.message}`, { cause: e })))
      m.#server.listen(port, host, () => resolve())
    })
    m.#server.on('error', () => undefined)
    return m
  }

  /** The bound address (`host:port`), useful with port 0. */
  get address(): string {
    const a = this.#server.address()
    if (a === null || typeof a === 'string') return String(a)
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
  }

  async #render(): Promise<string> {
    const c = this.#cached
    if (c && Date.now() - c.at < MIN_RENDER_MS) return c.text
    this.#rendering ??= this.#options.registry.metrics().then(
      (text) => {
        this.#cached = { text, at: Date.now() }
        this.#rendering = undefined
        return text
      },
      (e: unknown) => {
        this.#rendering = undefined
        throw e
      },
    )
    return this.#rendering
  }

  /** Stops listening and closes idle connections. */
  async close(): Promise<void> {
    const closed = new Promise((r) => this.#server.close(r))
    this.#server.closeAllConnections()
    await closed
  }
}
