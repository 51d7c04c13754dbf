/**
 * Helpers of the reliability specs (issue 15): a collector run under a command prefix
 * (`ip netns exec`, `setpriv` as an unprivileged uid, a capability set), metrics scraped
 * from inside a namespace, and readers of what the archive holds.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

import { archiveFiles, CLI } from './collector.js'

/** Offsets in struct tcp_info (KERNEL-UAPI.md). */
const TCPI_BYTES_ACKED = 120
const TCPI_BYTES_RECEIVED = 128

/** Runs `setpriv` arguments that make a process the unprivileged `nobody` (65534) with no capability. */
export const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all']

export interface Running {
  child: ChildProcess
  stderr: () => string
  prom?: string
}

/**
 * Starts `tcpinfo collect args` behind `prefix` (e.g. `['ip', 'netns', 'exec', ns, ...AS_NOBODY]`);
 * resolves once it logged its start (and its metrics address with `--prom`).
 */
export async function startCollectorAs(prefix: string[], args: string[], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const argv = [...prefix, process.execPath, CLI, 'collect', ...args]
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let err = ''
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()))
  const wantProm = args.includes('--prom') && args[args.indexOf('--prom') + 1] !== ''
  const deadline = Date.now() + 15_000
  while (!/archiving every changed TCP connection/.test(err) || (wantProm && !/serving \/metrics/.test(err))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`collector did not start: ${err}`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  const prom = /serving \/metrics and \/healthz on (\S+)/.exec(err)?.[1]
  return { child, stderr: () => err, ...(prom ? { prom } : {}) }
}

/** Sends `signal` and resolves with the exit code (null when killed by a signal) and the time to exit, ms. */
export async function stopAs(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now()
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, ms: 0 }
  const exited = once(child, 'exit')
  child.kill(signal)
  const [code] = (await exited) as [number | null]
  return { code, ms: Date.now() - t0 }
}

/** GET `http://addr/metrics` from inside namespace `ns` (the collector's 127.0.0.1 is the namespace's). */
export function scrapeIn(ns: string | undefined, addr: string): string {
  const script = `fetch('http://${addr}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(e.message); process.exit(1) })`
  const argv = ns ? ['ip', 'netns', 'exec', ns, process.execPath, '-e', script] : [process.execPath, '-e', script]
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', timeout: 10_000 })
  if (r.status !== 0) throw new Error(`scrape ${addr}: ${r.stderr}`)
  return r.stdout
}

/** `zstd -dc` of a file as lines; throws if zstd fails or the last line is not whole. */
export function zstdLines(path: string): string[] {
  const r = spawnSync('zstd', ['-dcq', path], { encoding: 'utf8', maxBuffer: 256 << 20 })
  if (r.status !== 0) throw new Error(`zstd -dc ${path}: ${r.stderr}`)
  if (r.stdout.length > 0 && !r.stdout.endsWith('\n')) throw new Error(`${path}: last line is not whole`)
  return r.stdout.split('\n').slice(0, -1)
}

/** sha256 of every archive file under `dir`. */
export function hashes(dir: string): Map<string, string> {
  return new Map(archiveFiles(dir).map((f) => [f, createHash('sha256').update(readFileSync(f)).digest('hex')]))
}

export interface ArchivedRecord {
  Timestamp: string
  RawIDM: string
  Attributes: (string | null)[]
}

/** One record's local and remote port, and its final byte counters when it carries tcp_info. */
export function portsOf(r: ArchivedRecord): { sport: number; dport: number } {
  const idm = Buffer.from(r.RawIDM, 'base64')
  return { sport: idm.readUInt16BE(4), dport: idm.readUInt16BE(6) }
}

export function countersOf(r: ArchivedRecord | undefined): { acked: bigint; received: bigint } | undefined {
  const info = r?.Attributes[2]
  if (!info) return undefined
  const b = Buffer.from(info, 'base64')
  if (b.length < TCPI_BYTES_RECEIVED + 8) return undefined
  return { acked: b.readBigUInt64LE(TCPI_BYTES_ACKED), received: b.readBigUInt64LE(TCPI_BYTES_RECEIVED) }
}

export interface SeriesFile {
  file: string
  seq: number
  header: { Metadata: { UUID: string; Sequence: number } }
  records: ArchivedRecord[]
}

/** Every file series under `dir`: UUID → files sorted by sequence; every file must decode with `zstd -dc`. */
export function readSeries(dir: string): Map<string, SeriesFile[]> {
  const out = new Map<string, SeriesFile[]>()
  for (const file of archiveFiles(dir)) {
    const m = /^(.+)\.(\d{5})\.jsonl\.zst$/.exec(basename(file))
    if (!m) throw new Error(`not an archive name: ${file}`)
    const lines = zstdLines(file)
    const header = JSON.parse(lines[0] ?? '{}') as SeriesFile['header']
    const list = out.get(m[1] as string) ?? []
    list.push({ file, seq: Number(m[2]), header, records: lines.slice(1).map((l) => JSON.parse(l) as ArchivedRecord) })
    out.set(m[1] as string, list)
  }
  for (const l of out.values()) l.sort((a, b) => a.seq - b.seq)
  return out
}

/** Every record of the connection whose local port is `port` (and remote `dport`), in file order. */
export function recordsOfPort(series: Map<string, SeriesFile[]>, port: number, dport: number): ArchivedRecord[] {
  for (const files of series.values()) {
    const recs = files.flatMap((f) => f.records)
    if (recs.some((r) => portsOf(r).sport === port && portsOf(r).dport === dport)) return recs
  }
  return []
}
