#!/usr/bin/env node
// Archive read benchmark (issue #11): decode rate of readArchive() from .jsonl.zst and plain
// .jsonl, records/s on one core, and `tcpinfo csv` rows/s, optionally side by side with
// M-Lab's csvtool. Results: docs/BENCHMARKS.md ("Reading archives").
//
//   node bench/archive-read.mjs [--records N] [--csvtool PATH] [--rounds R] [--report] [--lazy]
//
// Builds a synthetic archive of N records (default 500k) from the busy NDT fixture (its 891
// data lines, each copy with its own cookie and a shifted timestamp, so records differ), in
// bench/results/archive/. Needs the built package (npm run build) and the zstd CLI.
import { execFileSync, spawnSync } from 'node:child_process'
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { once } from 'node:events'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const OUT = join(ROOT, 'bench', 'results', 'archive')
const FIXTURE = join(ROOT, 'crates/tcpinfo-core/tests/fixtures/mlab/ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst')

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : def
}
const N = Number(opt('--records', '500000'))
const ROUNDS = Number(opt('--rounds', '3'))
const CSVTOOL = opt('--csvtool', undefined)

const REPORT = args.includes('--report')
const { readArchive, writeArchiveCsv, writeReport } = await import(join(ROOT, 'dist/index.js'))

/** The synthetic archive: header + N data lines; cookie bytes 44..52 of RawIDM and the time vary per copy. */
async function build() {
  mkdirSync(OUT, { recursive: true })
  const jsonl = join(OUT, `ndt-x${N}.jsonl`)
  const zst = `${jsonl}.zst`
  if (existsSync(zst) && existsSync(jsonl)) return { jsonl, zst }
  const lines = execFileSync('zstd', ['-dc', FIXTURE]).toString().trimEnd().split('\n')
  const header = lines[0]
  const data = lines.slice(1).map((l) => JSON.parse(l))
  const out = createWriteStream(jsonl)
  out.write(`${header}\n`)
  for (let i = 0; i < N; i++) {
    const copy = Math.floor(i / data.length)
    const rec = data[i % data.length]
    const idm = Buffer.from(rec.RawIDM, 'base64')
    idm.writeBigUInt64LE(BigInt(0x62d84 + copy), 44)
    const t = new Date(Date.parse(rec.Timestamp) + copy * 11_000).toISOString()
    const line = `{"Timestamp":"${t}","RawIDM":"${idm.toString('base64')}","Attributes":${JSON.stringify(rec.Attributes)}}\n`
    if (!out.write(line)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  execFileSync('zstd', ['-q', '-3', '-f', jsonl, '-o', zst])
  return { jsonl, zst }
}

function best(fn) {
  const times = []
  for (let r = 0; r < ROUNDS; r++) times.push(fn())
  return Promise.all(times).then((ts) => Math.min(...ts))
}

async function time(fn) {
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  const n = await fn()
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = process.cpuUsage(cpu0)
  return { n, wall, cpu: (cpu.user + cpu.system) / 1e6 }
}

async function measure(label, fn) {
  let bestRun
  for (let r = 0; r < ROUNDS; r++) {
    const run = await time(fn)
    // CPU time, not wall time: on a shared machine the wall clock mostly measures the others.
    if (!bestRun || run.cpu < bestRun.cpu) bestRun = run
  }
  const row = { label, records: bestRun.n, wallS: bestRun.wall, cpuS: bestRun.cpu, perSec: bestRun.n / bestRun.wall, perCpuSec: bestRun.n / bestRun.cpu }
  console.log(`| ${label} | ${row.records} | ${row.wallS.toFixed(3)} | ${row.cpuS.toFixed(3)} | ${(row.perSec / 1e6).toFixed(2)} M/s | ${(row.perCpuSec / 1e6).toFixed(2)} M/s |`)
  return row
}

/** A writable that counts bytes (CSV to nowhere, without a pipe's cost). */
function counter() {
  const sink = { bytes: 0, write: (b) => ((sink.bytes += b.length), true), once: () => sink }
  return sink
}

const { jsonl, zst } = await build()
console.log(`archive: ${N} records; ${jsonl} ${(statSync(jsonl).size / 1e6).toFixed(1)} MB, .zst ${(statSync(zst).size / 1e6).toFixed(1)} MB; node ${process.version}; least CPU of ${ROUNDS} rounds\n`)
console.log('| what | records | wall s | CPU s | per wall s | per CPU s |')
console.log('|---|---:|---:|---:|---:|---:|')
const rows = []
rows.push(await measure('readArchive(.jsonl.zst).batches(): decoded batches', async () => {
  let n = 0
  for await (const b of readArchive(zst).batches()) n += b.size
  return n
}))
rows.push(await measure('readArchive(.jsonl).batches()', async () => {
  let n = 0
  for await (const b of readArchive(jsonl).batches()) n += b.size
  return n
}))
rows.push(await measure('for await (c of readArchive(.jsonl.zst)): Connection + timestampNs + cookie', async () => {
  let n = 0
  let x = 0n
  for await (const c of readArchive(zst)) {
    x ^= c.timestampNs ^ c.cookie
    n++
  }
  return x === -1n ? 0 : n
}))
if (args.includes('--lazy')) rows.push(await measure('… + c.tcpInfo.bytesAcked (lazy object decode)', async () => {
  let n = 0
  let x = 0n
  for await (const c of readArchive(zst)) {
    x ^= c.tcpInfo?.bytesAcked ?? 0n
    n++
  }
  return x === -1n ? 0 : n
}))
rows.push(await measure('writeArchiveCsv(.jsonl.zst), all 105 columns', async () => {
  const sink = counter()
  const r = await writeArchiveCsv(zst, sink)
  return r.stats.records
}))
/** A child process's wall and CPU time, from GNU time. */
function child(label, argv) {
  let bestRun
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint()
    const p = spawnSync('/usr/bin/time', ['-f', '%U %S %M', ...argv], { stdio: ['ignore', 'ignore', 'pipe'] })
    const wall = Number(process.hrtime.bigint() - t0) / 1e9
    if (p.status !== 0) throw new Error(`${label} failed: ${p.stderr}`)
    const [user, sys, rss] = p.stderr.toString().trim().split('\n').pop().split(' ').map(Number)
    const run = { wall, cpu: user + sys, rssMb: rss / 1024 }
    if (!bestRun || run.cpu < bestRun.cpu) bestRun = run
  }
  console.log(`| ${label} | ${N} | ${bestRun.wall.toFixed(3)} | ${bestRun.cpu.toFixed(3)} | ${(N / bestRun.wall / 1e6).toFixed(2)} M/s | ${(N / bestRun.cpu / 1e6).toFixed(2)} M/s (max RSS ${bestRun.rssMb.toFixed(0)} MB) |`)
}
child('tcpinfo csv FILE.jsonl.zst > /dev/null (process)', [process.execPath, join(ROOT, 'dist/cli/main.js'), 'csv', zst])
if (CSVTOOL) child('M-Lab csvtool FILE.jsonl.zst > /dev/null (process)', [CSVTOOL, zst])
if (REPORT) {
  // The report of the whole archive: one connection per copy of the 891-record download.
  const html = join(OUT, `report-x${N}.html`)
  const run = await time(async () => (await writeReport(zst, html)).connections.length)
  const mb = statSync(html).size / 1e6
  console.log(`\nreport: ${run.n} connections, ${N} points, ${run.wall.toFixed(2)} s wall, ${run.cpu.toFixed(2)} s CPU, ${mb.toFixed(1)} MB HTML (${html})`)
  const chromium = await import('playwright-core').then((m) => m.chromium).catch(() => undefined)
  if (chromium && existsSync('/usr/bin/chromium')) {
    const ctx = await chromium.launchPersistentContext(join(OUT, 'chromium-profile'), { executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1280, height: 900 }, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] })
    const page = await ctx.newPage()
    const t0 = Date.now()
    await page.goto(`file://${html}`, { waitUntil: 'load' })
    await page.waitForFunction(() => document.querySelectorAll('#summary tbody tr').length > 0)
    const loaded = Date.now() - t0
    const t3 = Date.now()
    await page.evaluate(() => document.getElementById('c0')?.scrollIntoView())
    await page.waitForFunction(() => document.querySelectorAll('.uplot canvas').length >= 4)
    const first = Date.now() - t3
    const t1 = Date.now()
    await page.click('#summary th:nth-child(5)')
    const sorted = Date.now() - t1
    const t2 = Date.now()
    await page.evaluate(() => document.getElementById(`c${Math.floor(document.querySelectorAll('section').length / 2)}`)?.scrollIntoView())
    await page.waitForFunction(() => document.querySelectorAll('.uplot canvas').length >= 12)
    const scrolled = Date.now() - t2
    console.log(`chromium: load and table ${loaded} ms; scroll to the first connection and draw ${first} ms; sort ${run.n} rows ${sorted} ms; jump to the middle and draw ${scrolled} ms`)
    await ctx.close()
  }
}
mkdirSync(OUT, { recursive: true })
void readFileSync
