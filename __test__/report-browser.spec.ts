/**
 * The report in a real browser: headless Chromium (Debian's `chromium`, installed by .ci/run)
 * opens the HTML offline; every connection's four charts are drawn (uPlot canvases with
 * pixels), the summary table sorts, there are no console errors, and a screenshot is saved
 * under .tmp/test-output/report-browser/.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'
import { chromium } from 'playwright-core'

import { writeReport } from '../src/index.js'

const MLAB = new URL('../crates/tcpinfo-core/tests/fixtures/mlab/', import.meta.url).pathname
const OUTPUT = new URL('../.tmp/test-output/report-browser/', import.meta.url).pathname
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'

test('charts render in headless Chromium with no console errors', async (t) => {
  if (!existsSync(CHROMIUM)) return t.fail(`no Chromium at ${CHROMIUM}: install Debian's 'chromium' (see .ci/run)`)
  const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-browser-'))
  const file = join(dir, 'report.html')
  const inputs = ['ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst', 'ndt-jdczh_1553815964_00000000000003E8.00183.jsonl.zst', 'finwait2-sample_1554836592_unsafe_000000000135A272.00000.jsonl.zst'].map((f) => join(MLAB, f))
  const { connections } = await writeReport(inputs, file)
  t.is(connections.length, 3)
  // A fresh profile directory (Playwright passes it as --user-data-dir) and --headless.
  const browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  try {
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text())
    })
    page.on('pageerror', (e) => problems.push(String(e)))
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) problems.push(`network request: ${r.url()}`)
    })
    await page.goto(`file://${file}`, { waitUntil: 'load' })
    await page.waitForFunction(() => document.querySelectorAll('.uplot canvas').length >= 12, undefined, { timeout: 20_000 })
    const perConnection = await page.$$eval('section', (secs) => secs.map((s) => s.querySelectorAll('.uplot canvas').length))
    t.deepEqual(perConnection, [4, 4, 4])
    // Every canvas has drawn pixels (not just an empty element).
    const drawn = await page.$$eval('.uplot canvas', (cs) =>
      (cs as HTMLCanvasElement[]).map((c) => {
        const d = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data
        let n = 0
        if (d) for (let i = 3; i < d.length; i += 4) if ((d[i] as number) > 0) n++
        return n
      }),
    )
    t.true(drawn.every((n) => n > 100), `pixels per canvas: ${drawn.join(',')}`)
    t.is(await page.$$eval('#summary tbody tr', (r) => r.length), 3)
    await page.click('#summary th:nth-child(5)') // sort by throughput, ascending
    t.is(await page.$eval('#summary tbody tr td a', (a) => a.textContent), 'ndt-jdczh_1553815964_00000000000003E8')
    await page.click('#summary th:nth-child(5)') // descending
    t.is(await page.$eval('#summary tbody tr td a', (a) => a.textContent), 'ndt-7hhhv_1559749627_0000000000062D84')
    mkdirSync(OUTPUT, { recursive: true })
    await page.screenshot({ path: join(OUTPUT, 'report.png'), fullPage: true })
    t.true(existsSync(join(OUTPUT, 'report.png')))
    t.deepEqual(problems, [])
  } finally {
    await browser.close()
  }
})
