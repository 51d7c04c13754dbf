/**
 * The BPF poll mode through the public API and the CLI (issue #16): `mode: 'bpf'` reports
 * connections like netlink mode; a bad mode is `ERR_CONFIG`; without privileges `bpf` fails
 * with `ERR_UNSUPPORTED` naming what is missing and `auto` falls back to netlink with one
 * warning line (run as an unprivileged user with setpriv). The record-level equivalence of
 * the two modes is tested in Rust: crates/tcpinfo-core/tests/bpf_mode.rs.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { watch, type Batch } from '../src/index.js'
import { connect, isClientSide, send, startSink } from './helpers/tcp.js'

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))

/** Runs the built CLI as user nobody without capabilities. */
async function runUnprivileged(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { code, stdout, stderr }
}

test('watch({ mode: "bpf" }) reports a new connection and its traffic', async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.server.close())
  const w = watch({ mode: 'bpf', intervalMs: 20, families: ['inet'] })
  let client: Awaited<ReturnType<typeof connect>> | undefined
  let opened = false
  let changed = false
  try {
    let polls = 0
    for await (const batch of w as AsyncIterable<Batch>) {
      polls++
      if (polls === 2) {
        client = await connect(sink.port)
      }
      const mine = client ? isClientSide(client) : () => false
      for (const c of batch.connections) {
        if (mine(c)) {
          if (c.kind === 'opened') {
            opened = true
            await send(client, 10_000)
          } else if (c.kind === 'changed' && opened) changed = true
        }
      }
      if ((opened && changed) || polls > 200) break
    }
  } finally {
    client?.destroy()
  }
  t.true(opened, 'the connection is reported opened')
  t.true(changed, 'and changed after traffic')
})

test('an unknown mode is ERR_CONFIG naming the option', (t) => {
  const err = t.throws(() => watch({ mode: 'ebpf' as 'bpf' }))
  t.is((err as { code?: string }).code, 'ERR_CONFIG')
  t.regex(err?.message ?? '', /mode/)
})

test('unprivileged: --poll-mode bpf fails with ERR_UNSUPPORTED naming the missing capability', async (t) => {
  const r = await runUnprivileged(['watch', '--poll-mode', 'bpf', '--no-destroy-events', '--count', '1', '--json'])
  t.not(r.code, 0)
  t.regex(r.stderr, /ERR_UNSUPPORTED/)
  t.regex(r.stderr, /CAP_BPF/)
})

test('unprivileged: --poll-mode auto falls back to netlink with one warning line', async (t) => {
  const r = await runUnprivileged(['watch', '--poll-mode', 'auto', '--no-destroy-events', '--count', '3', '--json'])
  t.is(r.code, 0, r.stderr)
  const lines = r.stderr.split('\n').filter((l) => l.includes('ERR_UNSUPPORTED'))
  t.is(lines.length, 1, r.stderr)
  t.regex(lines[0] ?? '', /CAP_BPF/)
})
