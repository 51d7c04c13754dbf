/**
 * readArchive() and `tcpinfo csv` on M-Lab's real archives (crates/tcpinfo-core/tests/fixtures/mlab):
 * every record decodes, typed like watch()'s connections; corrupt inputs give their valid
 * prefix and one ERR_ARCHIVE naming file and offset; skip mode counts; directories, globs and
 * streams; CSV equals M-Lab csvtool's output.
 */
import { execFileSync } from 'node:child_process'
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { ArchiveReadError, Connection, readArchive, TcpinfoError } from '../src/index.js'
import { toJsonLine } from '../src/cli/format/json.js'
import { Progress } from '../src/cli/format/progress.js'
import { run } from './helpers/cli.js'

const MLAB = new URL('../crates/tcpinfo-core/tests/fixtures/mlab/', import.meta.url).pathname
const GOLDEN = new URL('../crates/tcpinfo-archive-read/tests/fixtures/csvtool/', import.meta.url).pathname
const NDT = join(MLAB, 'ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst')
const COUNTS: Record<string, number> = {
  'archiveRecords.jsonl.zst': 420,
  'finwait2-sample_1554836592_unsafe_000000000135A272.00000.jsonl.zst': 62,
  'ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst': 891,
  'ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst': 150,
  'ndt-jdczh_1553815964_00000000000003E8.00185.jsonl.zst': 150,
  'testdata.zst': 420,
}

async function all(input: Parameters<typeof readArchive>[0], options?: Parameters<typeof readArchive>[1]): Promise<Connection[]> {
  const out: Connection[] = []
  for await (const c of readArchive(input, options)) out.push(c)
  return out
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'tcpinfo-read-'))
}

test('every fixture: all records, typed like live connections', async (t) => {
  for (const [name, count] of Object.entries(COUNTS)) {
    const recs = await all(join(MLAB, name))
    t.is(recs.length, count, name)
    t.true(recs[0] instanceof Connection)
    t.is(recs[0]?.metadata?.source, join(MLAB, name))
    // The cookie (read through the index's u64 view) is the one in each record's inet_diag_msg.
    t.true(
      recs.every((c) => c.cookie === c.raw?.readBigUInt64LE(44)),
      name,
    )
  }
})

test('the busy NDT download: 891 records, monotone counters, metadata and timestamps', async (t) => {
  const recs = await all(NDT)
  t.is(recs.length, 891)
  let sent = 0n
  let received = 0n
  for (const c of recs) {
    const ti = c.tcpInfo
    if (!ti?.bytesSent || ti.bytesReceived === undefined) return t.fail('tcpInfo missing')
    t.true(ti.bytesSent >= sent && ti.bytesReceived >= received)
    sent = ti.bytesSent
    received = ti.bytesReceived
  }
  t.is(sent, 3_939_771n)
  const first = recs[0] as Connection
  const last = recs[890] as Connection
  t.is(first.uuid, 'ndt-7hhhv_1559749627_0000000000062D84')
  t.is(first.kind, 'opened')
  t.is(last.kind, 'changed')
  t.is(first.metadata?.sequence, 0)
  t.is(first.timestamp.toISOString(), '2019-07-01T00:00:12.092Z')
  t.is(last.timestampNs, 1_561_939_222_752_000_000n)
  t.is(first.id?.srcPort, 33475)
  t.is(first.cookie, 0x62d84n)
  t.is(last.decoded?.stateName, 'CLOSE-WAIT')
  t.true(first.archivalRecord?.startsWith('{"Timestamp":"2019-07-01T00:00:12.092Z","RawIDM":'))
})

test('a directory is read recursively in time order; globs and streams work', async (t) => {
  const dir = tmp()
  const a = join(dir, '2019/04/01')
  const b = join(dir, '2019/03/29')
  mkdirSync(a, { recursive: true })
  mkdirSync(b, { recursive: true })
  writeFileSync(join(a, 'x.00185.jsonl.zst'), readFileSync(join(MLAB, 'ndt-jdczh_1553815964_00000000000003E8.00185.jsonl.zst')))
  writeFileSync(join(a, 'x.00183.jsonl.zst'), readFileSync(join(MLAB, 'ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst')))
  writeFileSync(join(b, 'y.00000.jsonl.zst'), readFileSync(NDT))
  writeFileSync(join(b, 'notes.txt'), 'not an archive')
  const recs = await all(dir)
  t.is(recs.length, 891 + 300)
  t.deepEqual([...new Set(recs.map((c) => c.metadata?.sequence))], [0, 183, 185])
  t.is((await all(join(dir, '**/x.*.jsonl.zst'))).length, 300)
  t.is((await all(createReadStream(NDT))).length, 891)
  t.is((await all([createReadStream(NDT), join(a, 'x.00183.jsonl.zst')])).length, 1041)
})

test('truncated and corrupt files: the valid prefix, then one ERR_ARCHIVE naming file and offset', async (t) => {
  const dir = tmp()
  const bytes = readFileSync(NDT)
  const cut = join(dir, 'cut.jsonl.zst')
  writeFileSync(cut, bytes.subarray(0, bytes.length >> 1))
  const got: Connection[] = []
  const err = await t.throwsAsync(async () => {
    for await (const c of readArchive(cut)) got.push(c)
  })
  t.true(err instanceof ArchiveReadError && err instanceof TcpinfoError)
  const e = err as ArchiveReadError
  t.is(e.code, 'ERR_ARCHIVE')
  t.is(e.kind, 'truncated')
  t.is(e.source, cut)
  t.true(e.compressedOffset && e.byteOffset <= bytes.length >> 1)
  t.true(got.length >= 223, `prefix of ${got.length}`)
  // A foreign file, and a missing one.
  const png = join(dir, 'a.png')
  writeFileSync(png, Buffer.from('89504e470d0a1a0a0000000d4948445200000010', 'hex'))
  t.is(((await t.throwsAsync(all(png))) as ArchiveReadError).kind, 'foreign')
  t.is(((await t.throwsAsync(all(join(dir, 'missing.jsonl')))) as ArchiveReadError).kind, 'io')
  // Skip mode: everything else is read; errors are counted.
  const reader = readArchive([cut, png, join(dir, 'missing.jsonl'), NDT], { onError: 'skip' })
  let n = 0
  for await (const _ of reader) n++
  t.is(n, got.length + 891)
  t.is(reader.stats.errors, 3)
  t.deepEqual(reader.errors.map((x) => x.kind).sort(), ['foreign', 'io', 'truncated'])
})

test('a bad line in plain JSONL names its line number', async (t) => {
  const dir = tmp()
  const text = execFileSync('zstd', ['-dc', NDT]).toString().split('\n')
  text[100] = '{"Timestamp":"2019-07-01T00:00:12Z","RawIDM":"not base64!"}'
  const f = join(dir, 'bad.jsonl')
  writeFileSync(f, text.join('\n'))
  const got: Connection[] = []
  const e = (await t.throwsAsync(async () => {
    for await (const c of readArchive(f)) got.push(c)
  })) as ArchiveReadError
  t.is(e.kind, 'record')
  t.is(e.line, 101)
  t.is(got.length, 99)
  t.regex(e.message, /bad\.jsonl: line 101/)
  const reader = readArchive(f, { onError: 'skip' })
  let n = 0
  for await (const _ of reader) n++
  t.is(n, 890)
  t.is(reader.stats.skipped, 1)
})

test('tcpinfo csv: csvtool header and rows on every fixture; columns; json; errors', async (t) => {
  const header = execFileSync('zstd', ['-dc', join(GOLDEN, 'archiveRecords.jsonl.zst.csv.zst')]).toString().split('\n')[0]
  for (const [name, count] of Object.entries(COUNTS)) {
    const r = await run(['csv', join(MLAB, name)])
    t.is(r.code, 0, r.stderr)
    t.is(r.stderr, '', 'no progress line when stderr is not a terminal')
    const lines = r.stdout.trimEnd().split('\n')
    t.is(lines[0], header)
    t.is(lines.length, count + 1, name)
  }
  // Byte for byte csvtool's rows (minus its row for the header line).
  const golden = execFileSync('zstd', ['-dc', join(GOLDEN, 'ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst.csv.zst')]).toString().split('\n')
  golden.splice(1, 1)
  t.is((await run(['csv', NDT])).stdout, golden.join('\n'))
  const sel = await run(['csv', '--columns', 'Timestamp,TCP.BytesSent,TCP.BytesReceived', NDT])
  const rows = sel.stdout.trimEnd().split('\n')
  t.is(rows[0], 'Timestamp,TCP.BytesSent,TCP.BytesReceived')
  t.is(rows[891], '2019-07-01T00:00:22.752Z,3939771,1245')
  t.is((await run(['csv', '--columns', 'Nope', NDT])).code, 2)
  const list = await run(['csv', '--list-columns'])
  t.is(list.stdout.split('\n')[0], 'Timestamp')
  t.is(list.stdout.trimEnd().split('\n').length, 105)
  const json = await run(['csv', '--json', NDT])
  const objs = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.is(objs.length, 891)
  t.is((objs[890]?.['tcpInfo'] as Record<string, unknown>)['bytesSent'], '3939771')
  t.is(objs[0]?.['uuid'], 'ndt-7hhhv_1559749627_0000000000062D84')
  const dir = tmp()
  const cut = join(dir, 'cut.jsonl.zst')
  writeFileSync(cut, readFileSync(NDT).subarray(0, 40000))
  const bad = await run(['csv', cut])
  t.is(bad.code, 1)
  t.regex(bad.stderr, /cut\.jsonl\.zst.*truncated.*\[ERR_ARCHIVE\]/)
  t.true(bad.stdout.split('\n').length > 200, 'the rows before the damage are written')
  const skipped = await run(['csv', '--skip-errors', cut, NDT])
  t.is(skipped.code, 0)
  t.regex(skipped.stderr, /1 errors skipped/)
  t.true(readdirSync(dir).length === 1)
})

test('the progress line: files, records, bytes, rate and ETA on a terminal only', async (t) => {
  const reader = readArchive(NDT)
  for await (const _ of reader.batches());
  const written: string[] = []
  const tty = { isTTY: true, write: (s: string) => written.push(s) > 0 } as unknown as NodeJS.WritableStream & { isTTY: boolean }
  const p = new Progress(tty)
  p.update(reader, true)
  p.done(reader)
  t.regex(written[0] ?? '', /files 1\/1 records 891 .*B\/.*B .* rec\/s/)
  t.is(written.at(-1), '\n')
  const quiet: string[] = []
  new Progress({ isTTY: false, write: (s: string) => quiet.push(s) > 0 } as unknown as NodeJS.WritableStream).done(reader)
  t.deepEqual(quiet, [])
})

test('csv --json (made in Rust) agrees with the records read in JS, field for field', async (t) => {
  for (const name of ['ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst', 'archiveRecords.jsonl.zst', 'testdata.zst', 'finwait2-sample_1554836592_unsafe_000000000135A272.00000.jsonl.zst']) {
    const file = join(MLAB, name)
    const r = await run(['csv', '--json', file])
    t.is(r.code, 0, r.stderr)
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    const recs = await all(file)
    t.is(lines.length, recs.length, name)
    recs.forEach((c, i) => {
      const m = c.metadata
      const want = JSON.parse(toJsonLine({ timestamp: c.timestamp.toISOString(), uuid: c.uuid, ...(m?.sequence !== undefined ? { sequence: m.sequence } : {}), source: m?.source, ...c.decoded })) as unknown
      t.deepEqual(lines[i], want, `${name} record ${i}`)
    })
  }
})
