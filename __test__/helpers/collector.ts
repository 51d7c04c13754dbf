/** Runs `tcpinfo collect` as a real process for the output specs, and reads what it made. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

export interface RunningCollector {
  child: ChildProcess
  stderr: () => string
  /** The metrics address it logged (with `--prom host:0`). */
  prom?: string
}

/** Starts `tcpinfo collect` with `args`; resolves once it logged its start (and its metrics address, if any). */
export async function startCollector(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningCollector> {
  const child = spawn(process.execPath, [CLI, 'collect', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let err = ''
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()))
  const deadline = Date.now() + 15_000
  const wantProm = args.includes('--prom') && args[args.indexOf('--prom') + 1] !== ''
  while (!/archiving every changed TCP connection/.test(err) || (wantProm && !/serving \/metrics/.test(err))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`collector did not start: ${err}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  const prom = /serving \/metrics and \/healthz on (\S+)/.exec(err)?.[1]
  return { child, stderr: () => err, ...(prom ? { prom } : {}) }
}

/** Sends `signal`; resolves with the exit code. */
export async function stopCollector(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  child.kill(signal)
  return exitOf(child)
}

/**
 * The child's exit code, also when it has already exited: `once(child, 'exit')` called after
 * the event was emitted waits for ever.
 */
export async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  const [code] = (await once(child, 'exit')) as [number | null]
  return code
}

/** Archive files under `dir`. */
export function archiveFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.jsonl.zst'))
    .map((e) => join(e.parentPath, e.name))
    .sort()
}

/** The UUIDs of the archive files (`<UUID>.<seq>.jsonl.zst`). */
export function archiveUuids(dir: string): Set<string> {
  return new Set(archiveFiles(dir).map((f) => (/([^/]+)\.\d{5}\.jsonl\.zst$/.exec(f) as RegExpExecArray)[1] as string))
}

/** Prometheus text: the value of a sample (`name{labels}` exactly as exposed), or undefined. */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1).split(' ')[0])
  }
  return undefined
}

/** GET over HTTP; resolves status and body. */
export async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url)
  return { status: r.status, body: await r.text() }
}

/** A script for a namespace: opens `n` connections to addr:port at once, prints `{"open":[ports]}`; a line on stdin closes them all, then `{"closed":true}`. */
export const HOLD = (addr: string, port: number, n: number): string => `
  const net = require('net'); const socks = []; let up = 0
  for (let i = 0; i < ${n}; i++) {
    const c = net.connect(${port}, '${addr}', () => { if (++up === ${n}) console.log(JSON.stringify({ open: socks.map((s) => s.localPort) })) })
    c.on('error', (e) => console.log(JSON.stringify({ error: e.message })))
    c.resume()
    socks.push(c)
  }
  require('readline').createInterface({ input: process.stdin }).once('line', () => {
    let left = socks.length
    for (const c of socks) { c.on('close', () => { if (--left === 0) console.log('{"closed":true}') }); c.end() }
  })`
