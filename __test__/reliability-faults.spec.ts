/**
 * Faults of the archive's file system and of the process (issue 15), each with real traffic
 * through a veth pair: output permissions removed mid-run (the collector runs as the
 * unprivileged `nobody`, since root ignores mode bits), the output directory deleted
 * mid-run, SIGKILL mid-run followed by a restart. In each: no crash, one log line per
 * cause, an error metric, writing resumes once the fault is gone, every file decodes with
 * `zstd -dc`, and what was lost is exactly what docs/RELIABILITY.md says.
 * (A full disk, SIGKILL readability and bad flags are in collect.spec.ts.)
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'

import { archiveFiles, sample } from './helpers/collector.js'
import { AS_NOBODY, countersOf, hashes, readSeries, recordsOfPort, scrapeIn, startCollectorAs, stopAs } from './helpers/faults.js'
import { type NetnsPair, netnsPair, nodeIn, runClients, SERVER } from './helpers/netns-pair.js'

const PORT = 45_500
let subnet = 160

async function withPair(t: ExecutionContext, tbf?: { rate: string; limit?: string }): Promise<{ pair: NetnsPair; out: string }> {
  const pair = netnsPair(`faults${process.pid % 1000}${subnet}`, subnet++, tbf)
  t.teardown(() => pair.destroy())
  const server = nodeIn(pair.b, SERVER(pair.addrB, PORT, 20_000))
  t.teardown(() => server.child.kill())
  await server.lines.next()
  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-faults-'))
  chmodSync(out, 0o755)
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  return { pair, out }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** The date directories (`YYYY/MM/DD`) under `dir`. */
function dateDirs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isDirectory() && /^\d\d$/.test(e.name) && /\/\d{4}\/\d\d$/.test(e.parentPath))
    .map((e) => join(e.parentPath, e.name))
}

test.serial('output permissions removed mid-run (as an unprivileged uid): one log line, an error metric, nothing lost once they return', async (t) => {
  const { pair, out } = await withPair(t)
  const data = join(out, 'data')
  mkdirSync(data)
  chownSync(data, 65534, 65534)
  const c = await startCollectorAs(['ip', 'netns', 'exec', pair.a, ...AS_NOBODY], ['--output', data, '--flush-interval', '50ms', '--prom', '127.0.0.1:0'])
  t.teardown(() => c.child.kill('SIGKILL'))
  const before = await runClients(pair, PORT, [5_000, 6_000], 50)
  await sleep(300)
  const dirs = dateDirs(data)
  t.true(dirs.length >= 1, 'files were written as nobody')
  for (const d of dirs) chmodSync(d, 0o555)
  const during = await runClients(pair, PORT, [7_000, 8_000, 9_000], 50)
  await sleep(500)
  const lines = c.stderr().split('\n').filter((l) => /permission/i.test(l))
  t.true(lines.length >= 1, c.stderr())
  t.true(lines.length <= 2, `one line per cause (rate-limited): ${lines.length}`)
  t.regex(lines[0] ?? '', /create .*\.jsonl\.zst/, 'the line names the operation and the file')
  const m = scrapeIn(pair.a, c.prom as string)
  t.true((sample(m, 'tcpinfo_write_errors_total{cause="permission"}') ?? 0) > 0, 'counted by cause')
  t.true((sample(m, 'tcpinfo_error_total{type="write_permission"}') ?? 0) > 0, "counted in M-Lab's error metric")
  t.is(c.child.exitCode, null, 'still running')
  for (const d of dirs) chmodSync(d, 0o755)
  const after = await runClients(pair, PORT, [10_000], 50)
  await sleep(500)
  const m2 = scrapeIn(pair.a, c.prom as string)
  t.is(sample(m2, 'tcpinfo_sink_dropped_records_total{sink="archive"}'), 0, 'no record dropped: the lines waited for the directory')
  const { code } = await stopAs(c.child)
  t.is(code, 0, c.stderr())
  const series = readSeries(data)
  for (const rep of [...before, ...during, ...after]) {
    const recs = recordsOfPort(series, rep.port, PORT)
    t.true(recs.length >= 1, `port ${rep.port} archived`)
    const last = countersOf(recs.at(-1))
    t.is(last?.acked, BigInt(rep.sent + 2), `port ${rep.port}: final bytes_acked`)
  }
})

test.serial('output not writable from the start (mkdir refused): counted and logged once, the lines wait, nothing lost once it is fixed', async (t) => {
  const { pair, out } = await withPair(t)
  const data = join(out, 'data')
  chmodSync(out, 0o711)
  const c = await startCollectorAs(['ip', 'netns', 'exec', pair.a, ...AS_NOBODY], ['--output', data, '--flush-interval', '50ms', '--prom', '127.0.0.1:0'])
  t.teardown(() => c.child.kill('SIGKILL'))
  const during = await runClients(pair, PORT, [5_000, 6_000], 50)
  await sleep(500)
  const lines = c.stderr().split('\n').filter((l) => /Permission denied/.test(l))
  t.is(lines.length, 1, c.stderr())
  t.regex(lines[0] ?? '', /mkdir .*data/)
  const m = scrapeIn(pair.a, c.prom as string)
  t.true((sample(m, 'tcpinfo_write_errors_total{cause="permission"}') ?? 0) >= 1)
  t.is(sample(m, 'tcpinfo_sink_dropped_records_total{sink="archive"}'), 0, 'nothing dropped: the lines wait')
  mkdirSync(data)
  chownSync(data, 65534, 65534)
  const after = await runClients(pair, PORT, [7_000], 50)
  await sleep(500)
  t.is((await stopAs(c.child)).code, 0, c.stderr())
  const series = readSeries(data)
  for (const rep of [...during, ...after]) t.is(countersOf(recordsOfPort(series, rep.port, PORT).at(-1))?.acked, BigInt(rep.sent + 2), `port ${rep.port} archived with its final counters`)
})

test.serial('output directory deleted mid-run: recreated, an open connection continues in a new sequence file, other outputs go on', async (t) => {
  const { pair, out } = await withPair(t, { rate: '4mbit' })
  const data = join(out, 'data')
  const c = await startCollectorAs([], ['--output', data, '--netns', pair.pathA, '--flush-interval', '50ms', '--prom', '127.0.0.1:0'])
  t.teardown(() => c.child.kill('SIGKILL'))
  // One connection that keeps changing for ~3 s through the 4 mbit/s bottleneck.
  const long = runClients(pair, PORT, [1_500_000], 0)
  await sleep(800)
  for (let i = 0; i < 100 && archiveFiles(data).length === 0; i++) await sleep(50)
  t.is(archiveFiles(data).length, 1, "the long connection's file exists before the deletion")
  rmSync(data, { recursive: true, force: true })
  const short = await runClients(pair, PORT, [3_000, 4_000], 50)
  const [longRep] = await long
  await sleep(500)
  const m = scrapeIn(undefined, c.prom as string)
  t.true((sample(m, 'tcpinfo_write_errors_total{cause="other"}') ?? 0) >= 1, 'the deletion is counted')
  t.true((sample(m, 'tcpinfo_polls_total') ?? 0) > 50, 'polling went on')
  const { code } = await stopAs(c.child)
  t.is(code, 0, c.stderr())
  const series = readSeries(data)
  t.regex(c.stderr(), /error +archive: deleted .*jsonl\.zst: the file was deleted/, 'one line says files were deleted under the writer')
  for (const rep of short) {
    const recs = recordsOfPort(series, rep.port, PORT)
    t.true(recs.length >= 1, `port ${rep.port} (after the deletion) archived`)
    t.is(countersOf(recs.at(-1))?.acked, BigInt(rep.sent + 2))
  }
  // The long connection's file was deleted with the directory: its later records are in a
  // new sequence file (never sequence 0 again), ending with the final counters.
  const recs = recordsOfPort(series, longRep?.port ?? -1, PORT)
  t.true(recs.length >= 1, 'the connection open across the deletion has a file after it')
  t.is(countersOf(recs.at(-1))?.acked, BigInt((longRep?.sent ?? 0) + 2), 'with its final counters')
  const files = [...series.values()].find((fs) => fs.some((f) => f.records.some((r) => recs.includes(r)))) ?? []
  t.true(files.every((f) => f.seq >= 1), `a new sequence number: ${files.map((f) => f.seq).join(',')}`)
})

test.serial('SIGKILL mid-run, then a restart: every file decodes up to its last flush; the restart never changes a file and continues with new sequence numbers', async (t) => {
  const { pair, out } = await withPair(t, { rate: '6mbit' })
  const data = join(out, 'data')
  const first = await startCollectorAs([], ['--output', data, '--netns', pair.pathA, '--flush-interval', '50ms'])
  t.teardown(() => first.child.kill('SIGKILL'))
  // ~4 s through the 6 mbit/s bottleneck: open across the kill and the restart.
  let longDoneAt = 0
  const long = runClients(pair, PORT, [3_000_000], 0).then((r) => ((longDoneAt = Date.now()), r))
  await runClients(pair, PORT, [2_000, 3_000], 30)
  await sleep(700)
  const { code } = await stopAs(first.child, 'SIGKILL')
  t.is(code, null, 'killed')
  const killed = hashes(data)
  const seriesKilled = readSeries(data)
  t.true(killed.size >= 3, `${killed.size} files after the kill`)
  const second = await startCollectorAs([], ['--output', data, '--netns', pair.pathA, '--flush-interval', '50ms'])
  t.teardown(() => second.child.kill('SIGKILL'))
  const secondUpAt = Date.now()
  const [longRep] = await long
  t.true(longDoneAt > secondUpAt, 'the long connection was still open when the restarted collector began (else this machine is too slow for the test)')
  await sleep(400)
  t.is((await stopAs(second.child)).code, 0, second.stderr())
  const now = hashes(data)
  for (const [f, h] of killed) t.is(now.get(f), h, `${f} unchanged by the restart`)
  const series = readSeries(data)
  const recs = recordsOfPort(series, longRep?.port ?? -1, PORT)
  t.is(countersOf(recs.at(-1))?.acked, BigInt((longRep?.sent ?? 0) + 2), 'the connection open across the kill ends with its final counters')
  for (const [uuid, files] of series) {
    const seqs = files.map((f) => f.seq)
    t.deepEqual(seqs, [...new Set(seqs)], `${uuid}: distinct sequence numbers`)
    const before = seriesKilled.get(uuid)
    if (before && files.length > before.length) {
      const maxBefore = Math.max(...before.map((f) => f.seq))
      t.true(files.slice(before.length).every((f) => f.seq > maxBefore), `${uuid}: the restart's files come after ${maxBefore}`)
    }
    for (const f of files) t.is(f.header.Metadata.Sequence, f.seq)
  }
  t.true([...series.entries()].some(([u, fs]) => fs.length > (seriesKilled.get(u)?.length ?? Infinity)), 'a connection continued in a new file')
  t.is(spawnSync('sh', ['-c', `for f in $(find ${data} -name '*.zst'); do zstd -tq "$f" || exit 1; done`]).status, 0, 'zstd -t on every file')
})
