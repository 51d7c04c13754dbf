/** The `tcpinfo` CLI: output, --help/--version, and exit codes (2 for usage errors, one line). */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { renderTable, TABLE_COLUMNS } from '../src/cli/format/table.js'
import { run } from './helpers/cli.js'
import { connect, send, sleep, startSink } from './helpers/tcp.js'

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

const BAD_ARGS: [string[], RegExp][] = [
  [['snapshot', '--bogus'], /--bogus/],
  [['watch', '--interval', '0'], /--interval must be a number from 0\.1 to 86400000, got "0"/],
  [['watch', '--interval', 'soon'], /--interval .*"soon"/],
  [['watch', '--interval', '-5'], /--interval .*got "-5"/],
  [['watch', '--count', '-1'], /--count .*got "-1"/],
  [['watch', '--count', '0'], /--count/],
  [['snapshot', '--family', 'ipx'], /--family .*"ipx"/],
  [['snapshot', '--state', 'sleepy'], /--state .*unknown state "sleepy"; valid: established/],
  [['snapshot', '--exclude-srcport', '70000'], /--exclude-srcport .*"70000"/],
  [['snapshot', '--exclude-srcport', '22,x'], /--exclude-srcport .*"x"/],
  [['snapshot', '--exclude-dstip', '10.0.0.0/40'], /--exclude-dstip .*10\.0\.0\.0\/40/],
  [['watch', '--ignore-field', 'nope'], /--ignore-field must be one of state, caState/],
  [["nosuchcommand"], /unknown command "nosuchcommand"; commands: collect, snapshot, watch, events, csv, report, rtt/],
  [['snapshto'], /did you mean snapshot\?/],
  [['wach', '--json'], /did you mean watch\?/],
]

for (const [argv, message] of BAD_ARGS) {
  test(`bad arguments exit 2 with one line naming the problem: ${argv.join(' ')}`, async (t) => {
    const r = await run(argv)
    t.is(r.code, 2)
    t.is(r.stdout, '')
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr)
    t.regex(r.stderr, /^tcpinfo: /)
    t.regex(r.stderr, message)
  })
}

test('comma lists work wherever a flag repeats', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const all = await run(['snapshot', '--json', '--state', 'listening,established', '--family', 'inet'])
  t.true(all.stdout.includes(`"srcPort":${sink.port}`))
  const r = await run(['snapshot', '--json', '--state', 'listening', '--family', 'inet', '--exclude-srcport', `22,${sink.port}`])
  t.is(r.code, 0, r.stderr)
  t.false(r.stdout.includes(`"srcPort":${sink.port}`))
})

test('usage shows value names, not #0', async (t) => {
  for (const argv of [['--help'], ['watch', '--help'], ['snapshot', '--help']]) {
    const r = await run(argv)
    t.false(r.stdout.includes('#0'), argv.join(' '))
  }
  const r = await run(['watch', '--help'])
  t.regex(r.stdout, /--interval MS/)
  t.regex(r.stdout, /--family inet\|inet6/)
  t.regex(r.stdout, /--state NAME/)
})

test('--json objects carry the schema version and family names', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const r = await run(['snapshot', '--json', '--state', 'listening', '--family', 'inet'])
  const o = JSON.parse(r.stdout.split('\n')[0] ?? '{}') as { schema: number; family: string; id: { family: string } }
  t.is(o.schema, 1)
  t.is(o.family, 'inet')
  t.is(o.id.family, 'inet')
})

test('watch table: the header once over several polls, fixed columns, marks and changed columns', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const pending = run(['watch', '--interval', '40', '--count', '25', '--family', 'inet', '--exclude-local=false'])
  await sleep(150)
  const client = await connect(sink.port)
  const localPort = client.localPort
  await sleep(150)
  await send(client, 100_000)
  await sleep(150)
  client.destroy()
  const r = await pending
  t.is(r.code, 0, r.stderr)
  const lines = r.stdout.trimEnd().split('\n')
  t.is(lines.filter((l) => /^\s+Time\s+State/.test(l)).length, 1, 'one header')
  t.regex(lines[0] ?? '', /^\s+Time\s+State\s+Recv-Q/)
  const rows = lines.slice(1)
  t.true(rows.some((l) => l.startsWith('= ')), 'initial listing')
  const ours = rows.filter((l) => l.includes(` 127.0.0.1:${localPort} `))
  t.true(ours.some((l) => /^[+=] /.test(l)), ours.join('\n'))
  t.true(ours.some((l) => l.startsWith('~ ') && /acked/.test(l)), ours.join('\n'))
  t.true(ours.some((l) => l.startsWith('- ')), ours.join('\n'))
  // Fixed widths: the State column starts at the same offset on every row.
  const stateAt = new Set(rows.map((l) => l.search(/ (LISTEN|ESTAB|SYN-SENT|FIN-WAIT-\d|CLOSE-WAIT|LAST-ACK|CLOSING|CLOSED|\?|UNCONN|TIME-WAIT) /)))
  t.is(stateAt.size, 1, [...stateAt].join(','))
})

/** Runs the built CLI as a real process with stdout a pipe; reads one line, then closes the pipe. */
async function headOne(args: string[]): Promise<{ code: number | null; first: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  // Listened for before anything is awaited: a snapshot may exit before its first line has
  // been read from the pipe, and an 'exit' emitted before `once()` is called is never seen
  // (a CI run hung here).
  const exited = once(child, 'exit') as Promise<[number | null]>
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const first = await new Promise<string>((resolve, reject) => {
    child.on('error', reject)
    let buf = ''
    const done = (line: string) => {
      child.stdout.destroy()
      resolve(line)
    }
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString()
      const nl = buf.indexOf('\n')
      if (nl >= 0) done(buf.slice(0, nl))
    })
    child.stdout.on('end', () => done(buf))
  })
  const [code] = await exited
  return { code, first, stderr }
}

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))

for (const args of [['snapshot', '--json'], ['snapshot'], ['watch', '--json'], ['watch'], ['watch', '--json', '--state', 'listening']]) {
  test(`tcpinfo ${args.join(' ')} | head -1 exits 0 quietly`, async (t) => {
    const sink = await startSink()
    t.teardown(() => sink.server.close())
    const r = await headOne(args)
    t.true(r.first.length > 0, `no output; exit code ${r.code}; stderr: ${r.stderr}`)
    t.is(r.code, 0, r.stderr)
    // Quiet: no EPIPE, no error. A loaded machine may make the poller skip polls while the
    // first line is written; those notices are the one thing stderr may say.
    t.is(r.stderr.replace(/^tcpinfo: \d+ poll\(s\) skipped before poll \d+: output too slow; their changes are in this poll\n/gm, ''), '')
  })
}

test('--help into a file has no escape sequences, even when the terminal type asks for colours', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-help-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const args of [['--help'], ['watch', '--help'], ['snapshot', '--bogus']]) {
    const file = join(dir, 'out.txt')
    const fd = openSync(file, 'w')
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', fd, fd], env: { ...process.env, TERM: 'xterm-256color', COLORTERM: 'truecolor', FORCE_COLOR: '' } })
    await once(child, 'exit')
    closeSync(fd)
    const text = readFileSync(file, 'utf8')
    t.true(text.length > 0)
    t.false(text.includes('\x1b'), args.join(' '))
  }
})

test('renderTable pads columns to their widest cell, also with 300k rows (no spread of every row into one call)', (t) => {
  const row = (k: number) => TABLE_COLUMNS.map((_, i) => (i === 3 && k === 299_999 ? 'x'.repeat(40) : String(k % 7)))
  const rows = Array.from({ length: 300_000 }, (_, k) => row(k))
  const out = renderTable(rows).split('\n')
  t.is(out.length, 300_002)
  const header = out[0] as string
  t.is(header.indexOf('Peer Address:Port') - header.indexOf('Local Address:Port'), 42)
})
