/** The `tcpinfo` CLI: output, --help/--version, and exit codes (2 for usage errors, one line). */
import { readFileSync } from 'node:fs'

import test from 'ava'

import { run } from './helpers/cli.js'
import { startSink } from './helpers/tcp.js'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

test('--version prints the package version', async (t) => {
  const r = await run(['--version'])
  t.is(r.code, 0)
  t.is(r.stdout.trim(), pkg.version)
})

test('--help works on the CLI and on every command', async (t) => {
  for (const argv of [['--help'], ['snapshot', '--help'], ['watch', '--help']]) {
    const r = await run(argv)
    t.is(r.code, 0, argv.join(' '))
    t.regex(r.stdout, /tcpinfo/)
  }
})

test('snapshot prints an ss-like table with our listener', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const r = await run(['snapshot', '--family', 'inet'])
  t.is(r.code, 0)
  const lines = r.stdout.trim().split('\n')
  t.regex(lines[0] ?? '', /^State\s+Recv-Q\s+Send-Q\s+Local Address:Port\s+Peer Address:Port/)
  t.true(lines.some((l) => l.startsWith('LISTEN') && l.includes(`127.0.0.1:${sink.port}`)))
})

test('snapshot --json prints one JSON object per socket', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const r = await run(['snapshot', '--json', '--state', 'listen'])
  t.is(r.code, 0)
  const objs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; uuid: string; stateName: string; id: { srcPort: number } })
  const ours = objs.find((o) => o.id.srcPort === sink.port)
  t.truthy(ours)
  t.is(ours?.stateName, 'LISTEN')
  t.is(ours?.kind, 'opened')
  t.true(objs.every((o) => o.stateName === 'LISTEN'))
})

test('watch --count stops after that many polls', async (t) => {
  const r = await run(['watch', '--json', '--count', '3', '--interval', '10'])
  t.is(r.code, 0)
  const seqs = new Set(r.stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { seq: number }).seq))
  t.true([...seqs].every((s) => s >= 1 && s <= 3))
})

for (const argv of [
  ['snapshot', '--bogus'],
  ['watch', '--interval', '0'],
  ['watch', '--interval', 'soon'],
  ['watch', '--count', '-1'],
  ['snapshot', '--family', 'ipx'],
  ['snapshot', '--state', 'sleepy'],
  ['snapshot', '--exclude-srcport', '70000'],
  ['snapshot', '--exclude-dstip', '10.0.0.0/40'],
  ['nosuchcommand'],
]) {
  test(`bad arguments exit 2 with one line: ${argv.join(' ')}`, async (t) => {
    const r = await run(argv)
    t.is(r.code, 2)
    t.is(r.stdout, '')
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr)
    t.regex(r.stderr, /^tcpinfo: /)
  })
}
