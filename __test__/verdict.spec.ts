/**
 * The report's limit verdict on real flows, made in network namespaces and archived with
 * watch() (each record's `archivalLine`, as the collector writes them):
 * - a bulk sender through a rate-limited loopback (`tc tbf`, 8 Mbit/s): network-limited;
 * - a bulk sender whose receiver never reads: receiver-limited (zero window);
 * - a sender that writes 200 bytes every 25 ms: sender (application) limited.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { analyzeArchive, watch } from '../src/index.js'

const SECONDS = 3

/** Runs in the namespace: a server and one client on 127.0.0.1:PORT; MODE picks the flow. */
const FLOW = String.raw`
const net = require('net');
const [mode, port, secs] = process.argv.slice(1);
let done = false;
const finish = () => { if (done) return; done = true; console.log('done'); setTimeout(() => process.exit(0), 300); };
net.createServer((s) => { s.on('error', () => {}); if (mode === 'rwnd') s.pause(); else s.on('data', () => {}); })
  .listen(Number(port), '127.0.0.1', () => {
    const c = net.connect(Number(port), '127.0.0.1', () => {
      console.log('up');
      const end = Date.now() + Number(secs) * 1000;
      setTimeout(finish, Number(secs) * 1000 + 200);
      if (mode === 'app') {
        const t = setInterval(() => { if (Date.now() > end) { clearInterval(t); finish(); } else c.write(Buffer.alloc(200)); }, 25);
      } else {
        const chunk = Buffer.alloc(64 * 1024);
        const pump = () => { while (Date.now() < end) { if (!c.write(chunk)) { c.once('drain', pump); return; } } finish(); };
        pump();
      }
    });
    c.on('error', () => {});
  });
`

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] })
}

function namespace(name: string, tbf: boolean): string {
  ip('netns', 'add', name)
  ip('-n', name, 'link', 'set', 'lo', 'mtu', '1500')
  ip('-n', name, 'link', 'set', 'lo', 'up')
  if (tbf) execFileSync('ip', ['netns', 'exec', name, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', '8mbit', 'burst', '16kb', 'latency', '60ms'])
  return `/var/run/netns/${name}`
}

/** Archives the client side (dst port = server port) of each flow into DIR/<mode>.jsonl until the children exit. */
async function archive(netns: string, flows: Record<string, number>, children: ChildProcess[], dir: string): Promise<void> {
  const byPort = new Map(Object.entries(flows).map(([mode, port]) => [port, join(dir, `${mode}.jsonl`)]))
  const exited = Promise.all(children.map((c) => (c.exitCode === null ? once(c, 'exit') : undefined)))
  let over = false
  void exited.then(() => {
    over = true
  })
  const w = watch({ netns, intervalMs: 20 })
  try {
    let after = 0
    for await (const batch of w) {
      for (const c of batch.connections) {
        const file = c.id ? byPort.get(c.id.dstPort) : undefined
        const line = c.archivalLine
        if (file && line) appendFileSync(file, line)
      }
      if (over && ++after > 5) break
    }
  } finally {
    await w.return?.()
  }
}

function flow(ns: string, mode: string, port: number): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', FLOW, mode, String(port), String(SECONDS)], { stdio: ['ignore', 'ignore', 'inherit'] })
}

test.serial('verdicts of real flows: network-, receiver- and sender-limited', async (t) => {
  const tag = `read-v${process.pid}`
  const netNs = namespace(`${tag}-net`, true)
  const plainNs = namespace(`${tag}-plain`, false)
  t.teardown(() => {
    for (const n of [`${tag}-net`, `${tag}-plain`]) ip('netns', 'del', n)
  })
  const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-verdict-'))
  const children = { net: [flow(`${tag}-net`, 'bulk', 5001)], plain: [flow(`${tag}-plain`, 'rwnd', 5002), flow(`${tag}-plain`, 'app', 5003)] }
  await Promise.all([archive(netNs, { net: 5001 }, children.net, dir), archive(plainNs, { rwnd: 5002, app: 5003 }, children.plain, dir)])
  const { connections } = await analyzeArchive(['net', 'rwnd', 'app'].map((m) => join(dir, `${m}.jsonl`)))
  const byMode = (m: string) => connections.find((c) => c.uuid.startsWith(`${m}_`))
  const report = connections.map((c) => `${c.uuid}: ${c.summary.verdict.verdict} s=${c.summary.verdict.sender.toFixed(2)} r=${c.summary.verdict.receiver.toFixed(2)} n=${c.summary.verdict.network.toFixed(2)} ${c.summary.records} records ${c.summary.durationS.toFixed(1)} s`).join('\n')
  t.log(report)
  t.is(connections.length, 3, report)
  t.is(byMode('net')?.summary.verdict.verdict, 'network', report)
  t.is(byMode('rwnd')?.summary.verdict.verdict, 'receiver', report)
  t.is(byMode('app')?.summary.verdict.verdict, 'sender', report)
  // The rate limit shows: about 8 Mbit/s, far below what loopback does.
  const bps = byMode('net')?.summary.throughputBps ?? 0
  t.true(bps > 4e6 && bps < 9e6, `throughput ${bps}`)
})
