/**
 * Security of `tcpinfo collect` (issue 15): safe defaults (event socket 0660, metrics on
 * 127.0.0.1), no file name steered outside the output directory, anonymization on every
 * output that sends addresses out of the process (archive, event socket, metrics; Kafka in
 * reliability-kafka.spec.ts), the systemd unit of docs/deploy.md (verified, and the
 * collector run with exactly what it grants: an unprivileged uid, no capability,
 * no_new_privs), and what works without root / which capability the rest names.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import test, { type ExecutionContext } from 'ava'

import { ArchiveWriter, TcpinfoError, watch } from '../src/index.js'
import { archiveFiles, CLI, sample } from './helpers/collector.js'
import { AS_NOBODY, countersOf, readSeries, recordsOfPort, scrapeIn, startCollectorAs, stopAs, zstdLines } from './helpers/faults.js'
import { type NetnsPair, netnsPair, nodeIn, runClients, SERVER } from './helpers/netns-pair.js'

const PORT = 45_700
const MLAB_FIXTURE = fileURLToPath(new URL('../crates/tcpinfo-core/tests/fixtures/mlab/ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst', import.meta.url))
const DEPLOY_MD = fileURLToPath(new URL('../docs/deploy.md', import.meta.url))
let subnet = 180

async function withPair(t: ExecutionContext): Promise<{ pair: NetnsPair; out: string }> {
  const pair = netnsPair(`faults${process.pid % 1000}${subnet}`, subnet++)
  t.teardown(() => pair.destroy())
  const server = nodeIn(pair.b, SERVER(pair.addrB, PORT, 20_000))
  t.teardown(() => server.child.kill())
  await server.lines.next()
  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-sec-'))
  chmodSync(out, 0o755)
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  return { pair, out }
}

function tmp(t: ExecutionContext): string {
  const d = mkdtempSync(join(tmpdir(), 'tcpinfo-sec-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

test('defaults: metrics on 127.0.0.1:9990, event socket mode 0660', (t) => {
  const r = spawnSync(process.execPath, [CLI, 'collect', '--output', '/tmp/x', '--print-config'], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  const cfg = JSON.parse(r.stdout) as Record<string, { value: unknown; source: string }>
  t.deepEqual(cfg.prom, { value: '127.0.0.1:9990', source: 'default' })
  t.is(cfg.eventsocketMode?.value, 0o660)
  t.is(cfg.eventsocketMode?.source, 'default')
})

test.serial('the event socket is created 0660 and metrics listen on loopback only, by default', async (t) => {
  const { pair, out } = await withPair(t)
  const sock = join(out, 'ev.sock')
  const c = await startCollectorAs(['ip', 'netns', 'exec', pair.a], ['--output', join(out, 'data'), '--eventsocket', sock])
  t.teardown(() => c.child.kill('SIGKILL'))
  t.is(statSync(sock).mode & 0o777, 0o660)
  const listening = spawnSync('ip', ['netns', 'exec', pair.a, 'ss', '-Hltn'], { encoding: 'utf8' }).stdout
  t.regex(listening, /127\.0\.0\.1:9990/, listening)
  t.notRegex(listening, /(0\.0\.0\.0|\*|\[::\]):9990/)
  t.is((await stopAs(c.child)).code, 0)
})

test('no file name can be steered outside the output directory: UUID prefixes with ../, slashes, NUL or controls are refused', async (t) => {
  const dir = tmp(t)
  const out = join(dir, 'out')
  for (const bad of ['../../escape', 'a/b', '/abs', '..', '.', 'a\x00b', 'a\nb', 'a\x7fb']) {
    const file = join(dir, 'prefix')
    writeFileSync(file, bad)
    const r = spawnSync(process.execPath, [CLI, 'collect', '--output', out, '--uuid-prefix-file', file, '--reps', '1'], { encoding: 'utf8' })
    t.not(r.status, 0, `${JSON.stringify(bad)} refused`)
    t.regex(r.stderr, /prefix/i, r.stderr)
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr)
    t.throws(() => watch({ uuidPrefix: bad }), { instanceOf: TcpinfoError, code: 'ERR_CONFIG' }, `watch() refuses ${JSON.stringify(bad)}`)
    t.throws(() => new ArchiveWriter({ output: out, uuidPrefix: bad }), { instanceOf: TcpinfoError, code: 'ERR_CONFIG' }, `ArchiveWriter refuses ${JSON.stringify(bad)}`)
  }
  t.deepEqual(readdirSync(dir).sort(), ['prefix'], 'nothing was created beside the output directory')
})

test.serial('anonymization on: no full peer address leaves the process (archive, event socket, metrics)', async (t) => {
  const { pair, out } = await withPair(t)
  const sock = join(out, 'ev.sock')
  const data = join(out, 'data')
  const c = await startCollectorAs([], ['--output', data, '--netns', pair.pathA, '--eventsocket', sock, '--prom', '127.0.0.1:0', '--anonymize-ip', 'netblock', '--flush-interval', '50ms', '--metrics-port', String(PORT)])
  t.teardown(() => c.child.kill('SIGKILL'))
  const events: string[] = []
  const client = createConnection(sock)
  createInterface({ input: client }).on('line', (l) => events.push(l))
  client.on('error', () => {})
  await new Promise((r) => client.once('connect', r))
  const reports = await runClients(pair, PORT, [5_000, 6_000], 50)
  await new Promise((r) => setTimeout(r, 400))
  const metrics = scrapeIn(undefined, c.prom as string)
  client.destroy()
  t.is((await stopAs(c.child)).code, 0, c.stderr())
  const full = [pair.addrA, pair.addrB]
  const net = pair.addrB.replace(/\.\d+$/, '.0')
  // Archive: every RawIDM has both addresses cut to the /24.
  const ids = archiveFiles(data).flatMap((f) => zstdLines(f).slice(1)).map((l) => Buffer.from((JSON.parse(l) as { RawIDM: string }).RawIDM, 'base64'))
  t.true(ids.length > 0)
  for (const idm of ids) {
    t.is(idm.subarray(8, 12).join('.'), pair.addrA.replace(/\.\d+$/, '.0'))
    t.is(idm.subarray(24, 28).join('.'), net)
  }
  const series = readSeries(data)
  for (const r of reports) t.is(countersOf(recordsOfPort(series, r.port, PORT).at(-1))?.acked, BigInt(r.sent + 2), 'counters untouched')
  // Event socket: open events carry the anonymized SockID.
  const opens = events.map((l) => JSON.parse(l) as { Event: number; ID: { SrcIP: string; DstIP: string; DPort: number } | null }).filter((e) => e.Event === 0 && e.ID?.DPort === PORT)
  t.true(opens.length >= reports.length, `${opens.length} open events`)
  for (const e of opens) t.deepEqual([e.ID?.SrcIP, e.ID?.DstIP], [pair.addrA.replace(/\.\d+$/, '.0'), net])
  // Metrics: no address at all in any label or value.
  t.true((sample(metrics, 'tcpinfo_polls_total') ?? 0) > 0)
  for (const a of full) t.false(metrics.includes(a), `metrics mention ${a}`)
  t.false(/\b10\.\d+\.0\.[12]\b/.test(metrics))
})

/** The `[Service]` unit of docs/deploy.md with its paths pointed at this checkout. */
function unitFromDocs(): string {
  const md = readFileSync(DEPLOY_MD, 'utf8')
  const ini = /```ini\n([\s\S]*?)```/.exec(md)?.[1] ?? ''
  return ini.replace('/usr/bin/node /opt/tcpinfo/dist/cli/main.js', `${process.execPath} ${CLI}`)
}

test('the systemd unit of docs/deploy.md verifies, runs without root and grants no capability', (t) => {
  const unit = unitFromDocs()
  t.regex(unit, /^DynamicUser=yes$/m)
  t.regex(unit, /^CapabilityBoundingSet=$/m, 'an empty bounding set')
  t.regex(unit, /^AmbientCapabilities=$/m)
  t.regex(unit, /^NoNewPrivileges=yes$/m)
  t.notRegex(unit, /^User=root$/m)
  const have = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0
  if (!have) {
    t.log('systemd-analyze is not installed: the unit was checked by its text only')
    return
  }
  const dir = tmp(t)
  const file = join(dir, 'tcpinfo-faults.service')
  writeFileSync(file, unit)
  const v = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
  t.is(v.status, 0, v.stderr)
  t.is(v.stderr.trim(), '', v.stderr)
  const s = spawnSync('systemd-analyze', ['security', '--offline=true', file], { encoding: 'utf8' })
  const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(s.stdout)?.[1])
  t.log(`systemd-analyze security: exposure ${exposure}`)
  t.true(exposure <= 4, `exposure ${exposure} (OK is below 5)`)
})

test.serial("the collector runs with exactly the unit's privileges (nobody, no capability, no_new_privs): every connection archived with its final counters", async (t) => {
  const { pair, out } = await withPair(t)
  const data = join(out, 'data')
  mkdirSync(data)
  chownSync(data, 65534, 65534)
  const c = await startCollectorAs(['ip', 'netns', 'exec', pair.a, ...AS_NOBODY, '--no-new-privs'], ['--output', data, '--log-format', 'json', '--flush-interval', '100ms'])
  t.teardown(() => c.child.kill('SIGKILL'))
  const status = readFileSync(`/proc/${await childPid(c.child.pid as number)}/status`, 'utf8')
  t.regex(status, /^CapEff:\s+0+$/m, 'no effective capability')
  t.regex(status, /^CapBnd:\s+0+$/m, 'an empty bounding set')
  t.regex(status, /^NoNewPrivs:\s+1$/m)
  t.regex(status, /^Uid:\s+65534\s/m)
  const reports = await runClients(pair, PORT, [3_000, 40_000], 50)
  await new Promise((r) => setTimeout(r, 400))
  t.is((await stopAs(c.child)).code, 0, c.stderr())
  const series = readSeries(data)
  for (const r of reports) t.is(countersOf(recordsOfPort(series, r.port, PORT).at(-1))?.acked, BigInt(r.sent + 2), `port ${r.port}`)
  t.true(archiveFiles(data).every((f) => statSync(f).uid === 65534))
})

/** The node process under `ip netns exec … setpriv …` (exec chains keep the pid). */
async function childPid(pid: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    if (cmd.includes(CLI)) return pid
    await new Promise((r) => setTimeout(r, 20))
  }
  return pid
}

test('without root: snapshot and watch of the own namespace, csv and report work; --netns, netns all and rtt name the capability they need', (t) => {
  const dir = tmp(t)
  chownSync(dir, 65534, 65534)
  const run = (...args: string[]) => spawnSync(AS_NOBODY[0] as string, [...AS_NOBODY.slice(1), '--no-new-privs', process.execPath, CLI, ...args], { encoding: 'utf8', timeout: 20_000, cwd: dir })
  const snap = run('snapshot', '--json')
  t.is(snap.status, 0, snap.stderr)
  t.true(snap.stdout.split('\n').filter(Boolean).length >= 1)
  const w = run('watch', '--json', '--count', '2', '--interval', '50')
  t.is(w.status, 0, w.stderr)
  // A real M-Lab archive, copied where nobody can read it.
  const fixture = join(dir, 'mlab.jsonl.zst')
  copyFileSync(MLAB_FIXTURE, fixture)
  chownSync(fixture, 65534, 65534)
  const csv = run('csv', fixture)
  t.is(csv.status, 0, csv.stderr)
  t.true(csv.stdout.split('\n').length > 2)
  const rep = run('report', '--out', join(dir, 'r.html'), fixture)
  t.is(rep.status, 0, rep.stderr)
  ensureNetns('faultsnoroot')
  t.teardown(() => spawnSync('ip', ['netns', 'del', 'faultsnoroot']))
  const ns = run('snapshot', '--netns', '/var/run/netns/faultsnoroot')
  t.not(ns.status, 0)
  t.regex(ns.stderr, /CAP_SYS_ADMIN/, ns.stderr)
  const all = run('snapshot', '--netns', 'all')
  t.regex(all.stderr, /CAP_SYS_ADMIN/, all.stderr)
  t.regex(all.stderr, /CAP_SYS_PTRACE/, all.stderr)
  const rtt = run('rtt', '-i', 'lo', '--duration', '1')
  t.not(rtt.status, 0)
  t.regex(rtt.stderr, /CAP_NET_RAW/, rtt.stderr)
})

function ensureNetns(name: string): void {
  spawnSync('ip', ['netns', 'del', name])
  spawnSync('ip', ['netns', 'add', name])
}
