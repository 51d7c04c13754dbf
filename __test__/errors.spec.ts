/** Bad options and unusable namespaces fail with stable error codes (never message text). */
import { execFileSync, spawn } from 'node:child_process'

import test from 'ava'

import { snapshot, TcpinfoError, watch } from '../src/index.js'

test('a missing network namespace fails with ERR_NETNS', async (t) => {
  const e = await t.throwsAsync(snapshot({ netns: '/nonexistent/netns' }), { instanceOf: TcpinfoError })
  t.is(e?.code, 'ERR_NETNS')
})

test.serial('netns: snapshot sees the sockets of that namespace only', async (t) => {
  const ns = `tcpinfo-test-${process.pid}`
  execFileSync('ip', ['netns', 'add', ns])
  t.teardown(() => execFileSync('ip', ['netns', 'del', ns]))
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  const server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', "require('net').createServer().listen(45671, '127.0.0.1', () => console.log('up')); setTimeout(() => {}, 20000)"], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => server.kill())
  await new Promise<void>((resolve) => server.stdout.once('data', () => resolve()))
  const inside = await snapshot({ netns: `/var/run/netns/${ns}` })
  t.deepEqual(inside.connections.map((c) => c.id?.srcPort), [45671])
  const outside = await snapshot({})
  t.false(outside.connections.some((c) => c.id?.srcPort === 45671))
})
