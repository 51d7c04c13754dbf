/**
 * The collector says how fast it really polls: with `--max-cpu`, the effective interval
 * (stretched by the CPU budget) is logged when it changes, and polls that overrun the
 * configured interval warn once they are more than a tenth of all polls.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { CLI } from './helpers/collector.js'

test('the effective interval is logged when the CPU budget stretches it; overrunning polls warn', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-cadence-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // 0.1 ms is shorter than any dump (every poll overruns it); a budget of half a core stretches it.
  const r = spawnSync(process.execPath, [CLI, 'collect', `--output=${dir}`, '--interval=0.1ms', '--max-cpu=0.5', '--reps=80', '--prom='], { encoding: 'utf8', timeout: 60_000 })
  t.is(r.status, 0, r.stderr)
  const effective = [...r.stderr.matchAll(/effective poll interval ([\d.]+) ms \(configured 0.1 ms, CPU budget 0.5 of a core\)/g)].map((m) => Number(m[1]))
  t.true(effective.length >= 1, r.stderr)
  t.true(effective.at(-1)! > 0.5, `stretched well past 0.1 ms: ${effective.join(', ')}`)
  t.true(effective.length < 80, 'logged on changes, not every poll')
  t.regex(r.stderr, /warn +poller: \d+ of \d+ polls took longer than the 0.1 ms interval: raise --interval or set --max-cpu/)
  t.is(r.stderr.match(/polls took longer than/g)?.length, 1, 'rate-limited to one line')
})
