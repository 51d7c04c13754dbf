/**
 * `tcpinfo collect` end to end (issue 9), as a real process on a network namespace with
 * real traffic through a `tc tbf` bottleneck: every connection gets a file series that
 * `zstd -dc` decodes, whose header matches the file name and whose last record holds the
 * final counters the endpoints counted; rotation by age; restart without overwriting;
 * more connections than the open-file cap; SIGTERM finishes every frame within 2 s;
 * SIGKILL leaves readable files; M-Lab's deployment arguments start it verbatim.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test, { type ExecutionContext } from 'ava'

import { readArchive as readWithLibrary } from '../src/index.js'
import { archiveFiles, exitOf } from './helpers/collector.js'
import { type NetnsPair, netnsPair, nodeIn, runClients, SERVER } from './helpers/netns-pair.js'

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))
const PORT = 45_200
/** Offsets in struct tcp_info (KERNEL-UAPI.md). */
const TCPI_BYTES_ACKED = 120
const TCPI_BYTES_RECEIVED = 128

interface Header {
  Timestamp: string
  Metadata: { UUID: string; Sequence: number; StartTime: string }
}
interface Record {
  Timestamp: string
  RawIDM: string
  Attributes: (string | null)[]
}


/** `zstd -dc` of a file: its lines (throws if zstd fails). */
function zstdLines(path: string): string[] {
  const r = spawnSync('zstd', ['-dcq', path], { encoding: 'utf8', maxBuffer: 256 << 20 })
  if (r.status !== 0) throw new Error(`zstd -dc ${path}: ${r.stderr}`)
  t_assertWholeLines(r.stdout, path)
  return r.stdout.split('\n').slice(0, -1)
}

function t_assertWholeLines(text: string, path: string): void {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error(`${path}: last line is not whole`)
}

/** Local and remote ports of an archived record. */
function ports(r: Record): { sport: number; dport: number } {
  const idm = Buffer.from(r.RawIDM, 'base64')
  return { sport: idm.readUInt16BE(4), dport: idm.readUInt16BE(6) }
}

function counters(r: Record): { acked: bigint; received: bigint } | undefined {
  const info = r.Attributes[2]
  if (!info) return undefined
  const b = Buffer.from(info, 'base64')
  if (b.length < TCPI_BYTES_RECEIVED + 8) return undefined
  return { acked: b.readBigUInt64LE(TCPI_BYTES_ACKED), received: b.readBigUInt64LE(TCPI_BYTES_RECEIVED) }
}

/** Every file series: UUID → [sequence, header, records] sorted by sequence. */
function readArchive(t: ExecutionContext, dir: string): Map<string, { seq: number; header: Header; records: Record[]; file: string }[]> {
  const out = new Map<string, { seq: number; header: Header; records: Record[]; file: string }[]>()
  for (const file of archiveFiles(dir)) {
    const m = /^(.+)\.(\d{5})\.jsonl\.zst$/.exec(basename(file))
    t.truthy(m, file)
    const [, uuid, seqText] = m as RegExpExecArray
    const lines = zstdLines(file)
    const header = JSON.parse(lines[0] ?? '{}') as Header
    t.is(header.Timestamp, '0001-01-01T00:00:00Z')
    t.is(header.Metadata.UUID, uuid, `${file}: header UUID`)
    t.is(header.Metadata.Sequence, Number(seqText), `${file}: header Sequence`)
    const records = lines.slice(1).map((l) => JSON.parse(l) as Record)
    for (const r of records) {
      t.regex(r.Timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/)
      t.is(Buffer.from(r.RawIDM, 'base64').length, 72)
    }
    const dateDir = file.split('/').slice(-4, -1).join('-')
    t.is(dateDir, header.Metadata.StartTime.slice(0, 10), `${file}: directory is the start date`)
    const list = out.get(uuid as string) ?? []
    list.push({ seq: Number(seqText), header, records, file })
    out.set(uuid as string, list)
  }
  for (const l of out.values()) l.sort((x, y) => x.seq - y.seq)
  return out
}

/** Starts `tcpinfo collect` with `args`; resolves once it logged its start. */
async function startCollector(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, [CLI, 'collect', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let err = ''
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()))
  const deadline = Date.now() + 10_000
  while (!/archiving every changed TCP connection/.test(err)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`collector did not start: ${err}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return { child, stderr: () => err }
}

/** Sends `signal` and returns the exit code and the time to exit, ms. */
async function stopCollector(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now()
  child.kill(signal)
  const code = await exitOf(child)
  return { code, ms: Date.now() - t0 }
}


function hashes(dir: string): Map<string, string> {
  return new Map(archiveFiles(dir).map((f) => [f, createHash('sha256').update(readFileSync(f)).digest('hex')]))
}

let subnet = 60
async function withPair(t: ExecutionContext, tbf?: { rate: string; limit?: string }): Promise<{ pair: NetnsPair; out: string }> {
  const tag = `col${process.pid % 10_000}${subnet}`
  const pair = netnsPair(tag, subnet++, tbf)
  t.teardown(() => pair.destroy())
  const server = nodeIn(pair.b, SERVER(pair.addrB, PORT, 50_000))
  t.teardown(() => server.child.kill())
  await server.lines.next()
  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-collect-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  return { pair, out }
}

test.serial('every connection through a tbf bottleneck is archived with its final counters; SIGTERM finishes every frame within 2 s', async (t) => {
  const { pair, out } = await withPair(t, { rate: '20mbit', limit: '60kb' })
  const c = await startCollector(['--output', out, '--netns', pair.pathA, '--flush-interval', '100ms'])
  const sizes = [1_000, 200_000, 1_500_000, 30_000, 700_000]
  const reports = await runClients(pair, PORT, sizes)
  await new Promise((r) => setTimeout(r, 300))
  const { code, ms } = await stopCollector(c.child)
  t.is(code, 0, c.stderr())
  t.true(ms < 2000, `exit took ${ms} ms`)
  for (const f of archiveFiles(out)) t.is(spawnSync('zstd', ['-tq', f]).status, 0, `zstd -t ${f}`)

  const archive = readArchive(t, out)
  for (const rep of reports) {
    const series = [...archive.values()].find((s) => s.some((f) => f.records.some((r) => ports(r).sport === rep.port && ports(r).dport === PORT)))
    t.truthy(series, `a file series for client port ${rep.port}`)
    const records = (series ?? []).flatMap((f) => f.records)
    const last = records.at(-1) as Record
    const final = counters(last)
    t.truthy(final, 'the last record carries tcp_info')
    // The kernel counts the SYN and the FIN in bytes_acked, the peer's FIN in bytes_received.
    t.is(final?.acked, BigInt(rep.sent + 2), `bytes_acked for ${rep.sent} sent`)
    t.is(final?.received, BigInt(rep.recv + 1), `bytes_received for ${rep.recv} received`)
    t.true(records.length >= 1)
  }
  // The project's own reader decodes every record of every file, typed like watch()'s.
  let read = 0
  let closedWithCounters = 0
  for await (const c of readWithLibrary(out)) {
    read++
    if (c.kind === 'closed' || c.tcpInfo?.bytesAcked !== undefined) closedWithCounters++
    t.is(c.uuid, c.metadata?.uuid)
  }
  t.is(read, [...archive.values()].reduce((n, s) => n + s.reduce((m, f) => m + f.records.length, 0), 0))
  t.true(closedWithCounters > 0)
})

test.serial('rotation by age makes new sequence files; a restart continues the sequence and never changes a file', async (t) => {
  const { pair, out } = await withPair(t, { rate: '5mbit' })
  const first = await startCollector(['--output', out, '--netns', pair.pathA, '--flush-interval', '50ms', '--rotate-age', '300ms'])
  // One connection that keeps changing for ~4 s (slow through the 5 mbit/s bottleneck),
  // open across the restart.
  const client = runClients(pair, PORT, [2_500_000], 0)
  await new Promise((r) => setTimeout(r, 1000))
  t.is((await stopCollector(first.child)).code, 0, first.stderr())
  const before = hashes(out)
  const seriesBefore = readArchive(t, out)
  const longest = Math.max(...[...seriesBefore.values()].map((s) => s.length))
  t.true(longest >= 2, `rotation made ${longest} sequence files for the busiest connection`)

  const second = await startCollector(['--output', out, '--netns', pair.pathA, '--flush-interval', '50ms'])
  await client
  await new Promise((r) => setTimeout(r, 300))
  t.is((await stopCollector(second.child)).code, 0, second.stderr())
  for (const [file, hash] of before) t.is(hashes(out).get(file), hash, `${file} unchanged by the restart`)
  const after = readArchive(t, out)
  for (const [uuid, files] of after) {
    const seqs = files.map((f) => f.seq)
    t.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), `${uuid}: distinct sequences`)
  }
  const continued = [...after.entries()].filter(([uuid, files]) => files.length > (seriesBefore.get(uuid)?.length ?? 0) && seriesBefore.has(uuid))
  t.true(continued.length >= 1, 'a connection open across the restart continued in a new sequence file')
})

test.serial('more connections than the open-file cap: all archived, files valid', async (t) => {
  const { pair, out } = await withPair(t)
  const c = await startCollector(['--output', out, '--netns', pair.pathA, '--max-open-files', '3', '--flush-interval', '50ms'])
  const reports = await runClients(pair, PORT, Array.from({ length: 12 }, (_, i) => 10_000 + i), 150, 0)
  await new Promise((r) => setTimeout(r, 300))
  t.is((await stopCollector(c.child)).code, 0, c.stderr())
  const archive = readArchive(t, out)
  for (const rep of reports) {
    const recs = [...archive.values()].flatMap((s) => s.flatMap((f) => f.records)).filter((r) => ports(r).sport === rep.port)
    t.true(recs.length >= 1, `port ${rep.port} archived`)
    t.true(counters(recs.at(-1) as Record)?.acked !== undefined)
  }
})

test.serial('SIGKILL: every file reads with zstd -dc as whole lines up to the last flush', async (t) => {
  const { pair, out } = await withPair(t, { rate: '10mbit' })
  const c = await startCollector(['--output', out, '--netns', pair.pathA, '--flush-interval', '50ms'])
  const client = runClients(pair, PORT, [400_000, 400_000], 100)
  await new Promise((r) => setTimeout(r, 700))
  const { code } = await stopCollector(c.child, 'SIGKILL')
  t.is(code, null)
  await client
  const files = archiveFiles(out)
  t.true(files.length > 0)
  for (const f of files) {
    const lines = zstdLines(f)
    t.true(lines.length >= 1, f)
    for (const l of lines) JSON.parse(l)
  }
})

test.serial('a full disk: one log line per cause, polling goes on, writing resumes when space returns, files stay readable', async (t) => {
  const { pair, out } = await withPair(t)
  const mnt = join(out, 'small')
  mkdirSync(mnt)
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt])
  if (mounted.status !== 0) {
    t.log(`cannot mount a tmpfs here (${mounted.stderr}); skipped`)
    t.pass()
    return
  }
  t.teardown(() => spawnSync('umount', ['-l', mnt]))
  const filler = join(mnt, 'filler')
  spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k', 'count=64'])
  const c = await startCollector(['--output', join(mnt, 'data'), '--netns', pair.pathA, '--flush-interval', '50ms'])
  await runClients(pair, PORT, [5_000, 5_000, 5_000], 50)
  await new Promise((r) => setTimeout(r, 500))
  const noSpace = c.stderr().split('\n').filter((l) => /error/.test(l) && /no_space|No space/i.test(l))
  t.true(noSpace.length >= 1, c.stderr())
  t.true(noSpace.length <= 3, `rate-limited: ${noSpace.length} lines`)
  t.is(c.child.exitCode, null, 'still running')
  rmSync(filler)
  const later = await runClients(pair, PORT, [7_777], 100)
  await new Promise((r) => setTimeout(r, 500))
  t.is((await stopCollector(c.child)).code, 0, c.stderr())
  const archive = readArchive(t, join(mnt, 'data'))
  const recs = [...archive.values()].flatMap((s) => s.flatMap((f) => f.records))
  t.true(recs.some((r) => ports(r).sport === later[0]?.port), 'a connection after space returned is archived')
})

test.serial("M-Lab's deployment arguments, verbatim (single dash, env vars), start the collector", async (t) => {
  const { pair, out } = await withPair(t)
  const prefixFile = join(out, 'prefix')
  writeFileSync(prefixFile, 'mlab-test-host_1700000000')
  const dir = join(out, 'tcpinfo')
  const sock = join(out, 'tcpevents.sock')
  const r = spawnSync(process.execPath, [CLI, 'collect', `-prometheusx.listen-address=127.0.0.1:0`, `-output=${dir}`, `-uuid-prefix-file=${prefixFile}`, `-tcpinfo.eventsocket=${sock}`, '-anonymize.ip=none', '-exclude-local=false', '-reps=5', '--print-config'], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  const cfg = JSON.parse(r.stdout) as { [k: string]: { value: unknown; source: string } }
  t.deepEqual(cfg.output, { value: dir, source: 'flag' })
  t.deepEqual(cfg.excludeLocal, { value: false, source: 'flag' })
  t.deepEqual(cfg.eventsocket, { value: sock, source: 'flag' })
  // The same through M-Lab's environment variables, and a real run of 30 polls.
  const env = { OUTPUT: dir, UUID_PREFIX_FILE: prefixFile, TCPINFO_EVENTSOCKET: sock, PROMETHEUSX_LISTEN_ADDRESS: '127.0.0.1:0', ANONYMIZE_IP: 'netblock', REPS: '400', EXCLUDE_LOCAL: 'false', NETNS: pair.pathA }
  const { child, stderr } = await startCollector([], env)
  await runClients(pair, PORT, [20_000, 20_000], 100)
  const code = await exitOf(child)
  const run = { status: code, stderr: stderr() }
  t.is(run.status, 0, run.stderr)
  const files = archiveFiles(dir)
  t.true(files.length > 0, run.stderr)
  t.true(files.every((f) => basename(f).startsWith('mlab-test-host_1700000000_')), files.join(','))
  // -anonymize.ip=netblock (through ANONYMIZE_IP): the peer's address is cut to its /24.
  const peers = archiveFiles(dir).flatMap((f) => zstdLines(f).slice(1)).map((l) => Buffer.from((JSON.parse(l) as Record).RawIDM, 'base64').subarray(24, 28).join('.'))
  t.true(peers.length > 0)
  t.deepEqual([...new Set(peers)], [pair.addrB.replace(/\.\d+$/, '.0')])
})

test('bad flags, environment values and config files: one line naming them, exit 2', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-collect-bad-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const yaml = join(dir, 'c.yaml')
  writeFileSync(yaml, 'output: /tmp/x\nreps: lots\n')
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--reps', '-1'], {}, /-reps must be an integer from 0/],
    [['-interval=soon'], {}, /-interval must be a duration/],
    [['--bogus'], {}, /unknown flag --bogus/],
    [['-outptu=/tmp'], {}, /did you mean --output\?/],
    [[], { REPS: 'x' }, /REPS must be an integer/],
    [[], { ANONYMIZE_IP: 'hash' }, /ANONYMIZE_IP must be one of none, netblock, got "hash"/],
    [['--config', yaml], {}, /reps in .*c\.yaml must be an integer/],
    [['--config', join(dir, 'missing.json')], {}, /cannot read config file/],
    [['--exclude-dstip', '10.0.0.0/33'], {}, /--exclude-dstip/],
  ]
  for (const [args, env, message] of cases) {
    const r = spawnSync(process.execPath, [CLI, 'collect', ...args], { encoding: 'utf8', env: { ...process.env, ...env } })
    t.is(r.status, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${r.stderr}`)
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr)
    t.regex(r.stderr, message)
  }
})

test('precedence: flag > env > file > default, shown by --print-config', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-collect-cfg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'c.yaml')
  writeFileSync(file, 'output: /from/file\nreps: 7\nflush-interval: 2s\nexclude-srcport: [22, 80]\n')
  const r = spawnSync(process.execPath, [CLI, 'collect', '--config', file, '--output', '/from/flag', '--print-config'], { encoding: 'utf8', env: { ...process.env, OUTPUT: '/from/env', REPS: '9' } })
  t.is(r.status, 0, r.stderr)
  const cfg = JSON.parse(r.stdout) as { [k: string]: { value: unknown; source: string } }
  t.deepEqual(cfg.output, { value: '/from/flag', source: 'flag' })
  t.deepEqual(cfg.reps, { value: 9, source: 'env' })
  t.deepEqual(cfg.flushIntervalMs, { value: 2000, source: 'file' })
  t.deepEqual(cfg.excludeSrcPorts, { value: [22, 80], source: 'file' })
  t.deepEqual(cfg.rotateAgeMs, { value: 600_000, source: 'default' })
})
