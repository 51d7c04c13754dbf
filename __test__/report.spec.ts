/**
 * `tcpinfo report` / writeReport() on M-Lab's archives: one self-contained HTML file whose
 * summary carries the busy NDT download's final counters, and a verdict per connection.
 * The browser check is in report-browser.spec.ts; verdicts on real flows in verdict.spec.ts.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { verdictOf, writeReport } from '../src/index.js'
import { run } from './helpers/cli.js'

const MLAB = new URL('../crates/tcpinfo-core/tests/fixtures/mlab/', import.meta.url).pathname
const NDT = join(MLAB, 'ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst')

function embedded(html: string): { connections: { uuid: string; summary: Record<string, unknown> & { verdict: { verdict: string } }; chart: Record<string, unknown[]> }[] } {
  const m = /<script type="application\/json" id="data">([\s\S]*?)<\/script>/.exec(html)
  return JSON.parse(m?.[1] ?? '{}')
}

test('the report of the NDT download: final counters in the summary, charts data, self-contained', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'tcpinfo-report-')), 'r.html')
  const r = await run(['report', NDT, '--out', out])
  t.is(r.code, 0, r.stderr)
  const html = readFileSync(out, 'utf8')
  // Nothing is loaded from elsewhere (uPlot's SVG namespace URI is a name, not a load).
  t.notRegex(html, /<script[^>]+src=|<link[^>]+href=|<img|url\(|@import|src="http/, 'self-contained')
  t.regex(html, /uPlot/)
  const data = embedded(html)
  t.is(data.connections.length, 1)
  const c = data.connections[0]
  if (!c) return t.fail()
  t.is(c.uuid, 'ndt-7hhhv_1559749627_0000000000062D84')
  t.is(c.summary['bytesOut'], 3_938_159)
  t.is(c.summary['bytesIn'], 1245)
  t.is(c.summary['records'], 891)
  t.is(c.summary['finalState'], 'CLOSE-WAIT')
  t.is(c.summary['minRttMs'], 9.508)
  t.is(c.summary['retransmits'], 2)
  t.is(c.summary.verdict.verdict, 'receiver', 'the NDT client limited this download with its window (rwnd_limited 10.1 s of 10.7 s)')
  t.is(c.chart['t']?.length, 600)
  t.is(c.chart['acked']?.at(-1), 3.938159)
})

test('every fixture in one report; bad usage', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'tcpinfo-report-')), 'all.html')
  const { connections, reader } = await writeReport(MLAB, out, { title: 'fixtures' })
  t.is(reader.stats.records, 420 + 62 + 891 + 150 + 150 + 420)
  t.true(connections.length > 100)
  t.is(embedded(readFileSync(out, 'utf8')).connections.length, connections.length)
  t.is((await run(['report', NDT])).code, 2)
})

test('verdict arithmetic', (t) => {
  const base = { elapsedUs: 10e6, bytesOut: 1e6, bytesIn: 10, appLimitedSamples: 0 }
  t.is(verdictOf({ ...base, busyUs: 9e6, rwndUs: 0, sndbufUs: 0 }).verdict, 'network')
  t.is(verdictOf({ ...base, busyUs: 9e6, rwndUs: 8e6, sndbufUs: 0 }).verdict, 'receiver')
  t.is(verdictOf({ ...base, busyUs: 1e6, rwndUs: 0, sndbufUs: 0 }).verdict, 'sender')
  t.is(verdictOf({ ...base, busyUs: 9e6, rwndUs: 0, sndbufUs: 7e6 }).verdict, 'sender')
  const v = verdictOf({ ...base, busyUs: 6e6, rwndUs: 2e6, sndbufUs: 1e6 })
  t.is(Math.round((v.sender + v.receiver + v.network) * 100), 100)
  t.is(verdictOf({ ...base, bytesIn: 1e7, busyUs: 0, rwndUs: 0, sndbufUs: 0 }).receiving, true)
  t.is(verdictOf({ ...base, busyUs: Number.NaN, rwndUs: Number.NaN, sndbufUs: Number.NaN, appLimitedSamples: 0.9 }).verdict, 'sender')
})
