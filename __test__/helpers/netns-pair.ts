/**
 * Two network namespaces joined by a veth pair, optionally with a `tc tbf` bottleneck on
 * A's side (this kernel has no netem: a rate limit's queue makes ms of delay and, when
 * its limit fills, losses), and node processes run inside them.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

/** A namespace pair: A (10.<n>.0.1) and B (10.<n>.0.2). */
export interface NetnsPair {
  a: string
  b: string
  addrA: string
  addrB: string
  /** `/var/run/netns/<a>`. */
  pathA: string
  destroy(): void
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' })
}

/** Makes the pair; `tbf` adds a rate limit on A's egress (e.g. `{ rate: '20mbit', limit: '60kb' }`). */
export function netnsPair(tag: string, subnet: number, tbf?: { rate: string; burst?: string; limit?: string }): NetnsPair {
  const a = `${tag}a`
  const b = `${tag}b`
  for (const ns of [a, b]) {
    try {
      ip('netns', 'del', ns)
    } catch {
      // not there: fine
    }
    ip('netns', 'add', ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
  }
  ip('link', 'add', `${tag}x`, 'netns', a, 'type', 'veth', 'peer', 'name', `${tag}y`, 'netns', b)
  const addrA = `10.${subnet}.0.1`
  const addrB = `10.${subnet}.0.2`
  ip('-n', a, 'addr', 'add', `${addrA}/24`, 'dev', `${tag}x`)
  ip('-n', b, 'addr', 'add', `${addrB}/24`, 'dev', `${tag}y`)
  ip('-n', a, 'link', 'set', `${tag}x`, 'up')
  ip('-n', b, 'link', 'set', `${tag}y`, 'up')
  if (tbf) {
    execFileSync('tc', ['-n', a, 'qdisc', 'add', 'dev', `${tag}x`, 'root', 'tbf', 'rate', tbf.rate, 'burst', tbf.burst ?? '16kb', 'limit', tbf.limit ?? '100kb'])
  }
  return {
    a,
    b,
    addrA,
    addrB,
    pathA: `/var/run/netns/${a}`,
    destroy() {
      for (const ns of [a, b]) {
        try {
          ip('netns', 'del', ns)
        } catch {
          // already gone
        }
      }
    },
  }
}

/** A node process inside `ns` running `script`; its stdout as lines. */
export function nodeIn(ns: string, script: string): { child: ChildProcess; lines: AsyncIterableIterator<string> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  const rl = createInterface({ input: child.stdout! })
  return { child, lines: rl[Symbol.asyncIterator]() }
}

/**
 * A server in B on `port` that reads everything, answers each connection with `reply`
 * bytes once the client has finished sending, and prints `{"port":P,"recv":N,"sent":M}`
 * when the connection closes. First line: `{"up":true}`.
 */
export const SERVER = (addr: string, port: number, reply: number): string => `
  require('net').createServer((s) => {
    let recv = 0; const port = s.remotePort
    s.on('data', (d) => (recv += d.length))
    s.on('end', () => { s.end(Buffer.alloc(${reply}, 98)) })
    s.on('close', () => console.log(JSON.stringify({ port, recv, sent: ${reply} })))
    s.on('error', () => {})
  }).listen(${port}, '${addr}', () => console.log('{"up":true}'))`

/**
 * A client in A making `sizes.length` connections to addr:port, one after another with
 * `gapMs` between: each sends its size, half-closes, reads the reply to the end, closes,
 * and prints `{"port":P,"sent":N,"recv":M}`. `holdMs` keeps each open that long first.
 */
export const CLIENT = (addr: string, port: number, sizes: number[], holdMs = 0, gapMs = 20): string => `
  const net = require('net')
  const sizes = ${JSON.stringify(sizes)}
  ;(async () => {
    for (const n of sizes) {
      await new Promise((resolve) => {
        const c = net.connect(${port}, '${addr}', () => {
          setTimeout(() => c.end(Buffer.alloc(n, 97)), ${holdMs})
        })
        let recv = 0
        c.on('data', (d) => (recv += d.length))
        c.on('close', () => { console.log(JSON.stringify({ port: c.localPort ?? port_, sent: n, recv })); resolve() })
        let port_; c.on('connect', () => (port_ = c.localPort))
        c.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); resolve() })
      })
      await new Promise((r) => setTimeout(r, ${gapMs}))
    }
    console.log('{"done":true}')
  })()`

/** One client connection's report (see {@link CLIENT}). */
export interface ClientReport {
  port: number
  sent: number
  recv: number
}

/**
 * Runs {@link CLIENT} in A against B's server on `port` and collects each connection's
 * report; a connection error fails the caller.
 */
export async function runClients(pair: NetnsPair, port: number, sizes: number[], holdMs = 0, gapMs = 20): Promise<ClientReport[]> {
  const client = nodeIn(pair.a, CLIENT(pair.addrB, port, sizes, holdMs, gapMs))
  const reports: ClientReport[] = []
  for await (const line of client.lines) {
    const o = JSON.parse(line) as { done?: boolean; error?: string } & ClientReport
    if (o.done) break
    if (o.error) throw new Error(o.error)
    reports.push({ port: o.port, sent: o.sent, recv: o.recv })
  }
  return reports
}
