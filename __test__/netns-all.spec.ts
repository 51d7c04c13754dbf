/**
 * `watch({ netns: 'all' })` against the live kernel (root): namespaces made here, named
 * (`ip netns add`) and anonymous (`unshare -n` holding a node process), each with a
 * loopback connection made inside it by a node process.
 *
 * - All are watched; each connection carries its namespace (inode, name) and a UUID
 *   tagged with it, while host connections keep M-Lab's UUID format.
 * - A namespace created mid-run is picked up; a connection closed inside a namespace
 *   arrives with its final counters; a namespace deleted mid-run is dropped cleanly (its
 *   connections closed, no warning, gone from the namespace table).
 * - The archive names each connection's files with its tagged UUID (`Connection.uuid`).
 * - `maxCpu` bounds the poller thread's measured CPU over seconds, at 5,000 sockets.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { createInterface } from 'node:readline'

import test from 'ava'

import { ArchiveWriter, watch, type Batch, type Connection } from '../src/index.js'
import { sleep } from './helpers/tcp.js'

const PORT = 47_617
const N = 100_000
const TAG = `scale${process.pid}`

/** Listens on PORT, connects to itself, sends N bytes; prints `up`; on `close` closes all and prints `closed`. */
const LOOP = `
  const net = require('net')
  const srv = net.createServer((s) => { s.on('data', () => {}); s.on('error', () => {}); globalThis.peer = s })
  srv.listen(${PORT}, '127.0.0.1', () => {
    const c = net.connect(${PORT}, '127.0.0.1', () => c.write(Buffer.alloc(${N}), () => setTimeout(() => console.log('up'), 50)))
    process.stdin.on('data', () => { c.end(); setTimeout(() => { srv.close(); globalThis.peer?.destroy(); console.log('closed') }, 100) })
  })`

interface Proc {
  child: ChildProcess
  line(): Promise<string>
}

function proc(cmd: string, args: string[]): Proc {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  return { child, line: async () => String((await lines.next()).value) }
}

function named(ns: string): { proc: Proc; inode: number; del(): void } {
  execFileSync('ip', ['netns', 'add', ns])
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  return {
    proc: proc('ip', ['netns', 'exec', ns, process.execPath, '-e', LOOP]),
    inode: statSync(`/run/netns/${ns}`).ino,
    del: () => {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
      } catch {
        // gone already
      }
    },
  }
}

function anonymous(): { proc: Proc; inode: () => number } {
  const p = proc('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" -e "${LOOP.replace(/"/g, '\\"')}"`])
  return { proc: p, inode: () => Number(/\d+/.exec(readlinkSync(`/proc/${p.child.pid}/ns/net`))![0]) }
}

const onPort = (c: Connection): boolean => c.id?.srcPort === PORT || c.id?.dstPort === PORT

/** Polls `w` until `f` holds for everything seen so far on PORT; fails on any warning. */
async function gather(t: { fail(m: string): void }, w: AsyncIterator<Batch>, f: (seen: Connection[], b: Batch) => boolean, ms = 5000): Promise<Connection[]> {
  const seen: Connection[] = []
  const end = Date.now() + ms
  while (Date.now() < end) {
    const { value: b } = (await w.next()) as { value: Batch }
    if (b.warnings.length > 0) t.fail(`warnings: ${JSON.stringify(b.warnings)}`)
    seen.push(...b.connections.filter(onPort))
    if (f(seen, b)) return seen
  }
  throw new Error(`timed out; seen ${JSON.stringify(seen.map((c) => c.toJSON()))}`)
}

test.serial('every namespace is watched, with its identity, as namespaces come and go', async (t) => {
  const a = named(`${TAG}a`)
  t.teardown(() => (a.proc.child.kill(), a.del()))
  const b = anonymous()
  t.teardown(() => b.proc.child.kill())
  t.is(await a.proc.line(), 'up')
  t.is(await b.proc.line(), 'up')
  const inodeB = b.inode()
  const host = net.createServer()
  await new Promise<void>((r) => host.listen(0, '127.0.0.1', r))
  t.teardown(() => host.close())

  const w = watch({ netns: 'all', intervalMs: 20 })
  t.teardown(() => w.close())
  // The whole first poll: it comes in parts when other namespaces hold many sockets.
  const firstPoll: Connection[] = []
  let first: Batch
  do {
    first = ((await w.next()) as { value: Batch }).value
    firstPoll.push(...first.connections)
  } while (first.more)
  const ownInode = Number(/\d+/.exec(readlinkSync('/proc/self/ns/net'))![0])
  t.true(first.namespaces.some((n) => n.host && n.inode === ownInode))
  const mine = firstPoll.filter(onPort)
  for (const [inode, name] of [[a.inode, `${TAG}a`], [inodeB, null]] as const) {
    const here = mine.filter((c) => c.netns?.inode === inode)
    t.is(here.length, 3, `client, server and listener in namespace ${inode}`)
    for (const c of here) {
      t.is(c.netns?.name, name)
      t.false(c.netns?.host)
      t.regex(c.uuid, new RegExp(`_ns${inode}(\\.\\d+)?_[0-9A-F]{16}$`))
    }
  }
  const hostListener = firstPoll.find((c) => c.id?.srcPort === (host.address() as net.AddressInfo).port)
  t.true(hostListener?.netns?.host)
  t.regex(hostListener?.uuid ?? '', /_unsafe_[0-9A-F]{16}$|^[^_]*_[0-9A-F]{16}$|_[0-9]+_unsafe_[0-9A-F]{16}$/)
  t.notRegex(hostListener?.uuid ?? '', /_ns\d+/)

  // Created mid-run: picked up.
  const c = named(`${TAG}c`)
  t.teardown(() => (c.proc.child.kill(), c.del()))
  t.is(await c.proc.line(), 'up')
  await gather(t, w, (seen) => seen.filter((x) => x.kind === 'opened' && x.netns?.inode === c.inode).length === 3)

  // Closes inside the anonymous namespace: final counters.
  b.proc.child.stdin!.write('close\n')
  t.is(await b.proc.line(), 'closed')
  const closes = await gather(t, w, (seen) => seen.filter((x) => x.kind === 'closed' && x.netns?.inode === inodeB).length === 3)
  const client = closes.find((x) => x.kind === 'closed' && x.netns?.inode === inodeB && x.id?.dstPort === PORT)
  t.true(client?.fromDestroyEvent)
  t.true((client?.tcpInfo?.bytesAcked ?? 0n) >= BigInt(N))

  // Deleted mid-run: its connections close, it leaves the table, no warning.
  a.proc.child.kill('SIGKILL')
  await new Promise((r) => a.proc.child.once('exit', r))
  a.del()
  await gather(t, w, (seen, batch) => seen.filter((x) => x.kind === 'closed' && x.netns?.inode === a.inode).length >= 2 && !batch.namespaces.some((n) => n.inode === a.inode))
  const { value: after } = (await w.next()) as { value: Batch }
  t.false(after.namespaces.some((n) => n.inode === a.inode))
  t.true(after.stats.namespaces >= 2)
})

test.serial('the archive names connections of other namespaces by their tagged UUIDs', async (t) => {
  const a = named(`${TAG}w`)
  t.teardown(() => (a.proc.child.kill(), a.del()))
  t.is(await a.proc.line(), 'up')
  const output = mkdtempSync(join(tmpdir(), 'tcpinfo-netns-archive-'))
  t.teardown(() => rmSync(output, { recursive: true, force: true }))
  const uuidPrefix = `netns-test_${process.pid}`
  const writer = new ArchiveWriter({ output, uuidPrefix })
  // Listeners only: other namespaces of this host (socket farms of other tests) stay small.
  const w = watch({ netns: 'all', intervalMs: 20, uuidPrefix, states: 'listen' })
  t.teardown(() => w.close())
  const uuids = new Set<string>()
  for (let i = 0; i < 5; i++) {
    const { value: b } = (await w.next()) as { value: Batch }
    for (const c of b.connections) if (onPort(c) && c.netns?.inode === a.inode && c.archivalLine) uuids.add(c.uuid)
    if (!writer.write(b)) await writer.waitForRoom()
  }
  await w.return?.()
  await writer.close()
  t.is(uuids.size, 1, 'the listener of the namespace')
  const names = new Set(readdirSync(output, { recursive: true, encoding: 'utf8' }).map((p) => p.split('/').pop()))
  for (const u of uuids) {
    t.regex(u, new RegExp(`^${uuidPrefix}_ns${a.inode}(\\.\\d+)?_[0-9A-F]{16}$`))
    t.true(names.has(`${u}.00000.jsonl.zst`), `${u}: its file is named by its UUID (${[...names].filter((n) => n?.includes(`ns${a.inode}`)).join(', ')})`)
  }
})

/** utime + stime of this process's thread named `comm`, in seconds. */
function threadCpu(comm: string): number {
  const hz = 100
  for (const tid of readdirSync('/proc/self/task')) {
    let name
    try {
      name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
    } catch {
      continue
    }
    if (name !== comm) continue
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / hz
  }
  return Number.NaN
}

test.serial('maxCpu keeps the poller thread within its budget over seconds', async (t) => {
  // 2,500 loopback connections: 5,000 sockets to dump every poll.
  const server = net.createServer((s) => s.on('error', () => {}))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as net.AddressInfo).port
  const clients: net.Socket[] = []
  for (let i = 0; i < 2500; i++) {
    clients.push(await new Promise<net.Socket>((r) => { const s = net.connect(port, '127.0.0.1', () => r(s)) }))
  }
  t.teardown(() => { for (const s of clients) s.destroy(); server.close() })
  const budget = 0.2
  const w = watch({ intervalMs: 1, maxCpu: budget, families: ['inet'], states: 'all' })
  t.teardown(() => w.close())
  await w.next()
  await w.next()
  const cpu0 = threadCpu('tcpinfo-poller')
  const t0 = performance.now()
  let last: Batch | undefined
  let polls = 0
  while (performance.now() - t0 < 3000) {
    last = ((await w.next()) as { value: Batch }).value
    polls++
  }
  const seconds = (performance.now() - t0) / 1000
  const used = (threadCpu('tcpinfo-poller') - cpu0) / seconds
  t.log(`poller CPU ${(used * 100).toFixed(1)}% of a core over ${seconds.toFixed(1)} s, ${polls} polls, effective interval ${((last?.stats.effectiveIntervalNanos ?? 0) / 1e6).toFixed(2)} ms`)
  t.true(used <= budget * 1.1 + 0.02, `within the budget: ${used}`)
  // Not a lower bound on CPU: on a loaded machine the thread may get less than its budget.
  t.true(polls > 3 && used > 0, 'polls ran and were measured')
  t.true((last?.stats.effectiveIntervalNanos ?? 0) > 1_000_000, 'the interval was stretched beyond the configured 1 ms')
  t.true((last?.stats.cpuNanos ?? 0) > 0)
})
