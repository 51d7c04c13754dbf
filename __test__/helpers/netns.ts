/** Network namespace pairs joined by a veth, for tests that need a real path with a bottleneck. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

/** Runs a command, throwing with its stderr on failure. */
export function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Two namespaces `a` and `b`, veth `<tag>a` (in a, 10.77.N.1, fd77:N::1) ↔ `<tag>b` (in b, .2, ::2). */
export interface NetnsPair {
  a: string
  b: string
  ifA: string
  ifB: string
  v4: { a: string; b: string }
  v6: { a: string; b: string }
  destroy(): void
}

/** Creates the pair; `tbf` (e.g. `rate 100mbit burst 8kb limit 100kb`) shapes b's egress (b → a). */
export function netnsPair(tag: string, subnet: number, tbf?: string): NetnsPair {
  const a = `${tag}-${process.pid}-a`
  const b = `${tag}-${process.pid}-b`
  const ifA = `${tag}a`
  const ifB = `${tag}b`
  const pair: NetnsPair = {
    a,
    b,
    ifA,
    ifB,
    v4: { a: `10.77.${subnet}.1`, b: `10.77.${subnet}.2` },
    v6: { a: `fd77:${subnet}::1`, b: `fd77:${subnet}::2` },
    destroy() {
      for (const ns of [a, b]) {
        try {
          sh('ip', 'netns', 'del', ns)
        } catch {
          // Already gone.
        }
      }
    },
  }
  try {
    sh('ip', 'netns', 'add', a)
    sh('ip', 'netns', 'add', b)
    sh('ip', 'link', 'add', ifA, 'netns', a, 'type', 'veth', 'peer', 'name', ifB, 'netns', b)
    for (const [ns, dev, v4, v6] of [
      [a, ifA, pair.v4.a, pair.v6.a],
      [b, ifB, pair.v4.b, pair.v6.b],
    ] as const) {
      sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
      sh('ip', '-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev)
      sh('ip', '-n', ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad')
      sh('ip', '-n', ns, 'link', 'set', dev, 'up')
    }
    // Permanent neighbour entries: no ARP or neighbour discovery on the path. Without them
    // the first IPv6 SYN waits at a's neighbour table for an advertisement that crosses b's
    // full bottleneck queue, and a's kernel, which stamped the SYN before that wait, counts
    // it in the handshake's RTT sample (tcpi_min_rtt) while a capture sees the SYN leave
    // only after it (docs/internals/rtt/design.md).
    const mac = (ns: string, dev: string): string => (JSON.parse(sh('ip', '-n', ns, '-j', 'link', 'show', 'dev', dev)) as { address: string }[])[0]!.address
    const [macA, macB] = [mac(a, ifA), mac(b, ifB)]
    for (const [ns, dev, peer, lladdr] of [
      [a, ifA, pair.v4.b, macB],
      [a, ifA, pair.v6.b, macB],
      [b, ifB, pair.v4.a, macA],
      [b, ifB, pair.v6.a, macA],
    ] as const) {
      sh('ip', '-n', ns, 'neigh', 'replace', peer, 'lladdr', lladdr, 'dev', dev, 'nud', 'permanent')
    }
    if (tbf) sh('tc', '-n', b, 'qdisc', 'add', 'dev', ifB, 'root', 'tbf', ...tbf.split(' '))
  } catch (e) {
    pair.destroy()
    throw e
  }
  return pair
}

/** Spawns `cmd` inside namespace `ns`; resolves once a stdout (or stderr) line matches `ready`. */
export async function spawnIn(ns: string, ready: RegExp, cmd: string, ...args: string[]): Promise<ChildProcess> {
  // Raised priority: on a busy machine a starved traffic process would time its own
  // scheduling delays instead of the network path.
  const p = spawn('nice', ['-n', '-10', 'ip', 'netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: string[] = []
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      p.kill()
      reject(new Error(`${cmd} not ready in 15 s: ${lines.join(' | ')}`))
    }, 15_000)
    for (const stream of [p.stdout, p.stderr]) {
      createInterface({ input: stream! }).on('line', (l) => {
        lines.push(l)
        if (ready.test(l)) {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    p.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before ready: ${lines.join(' | ')}`)))
  })
  return p
}

/** Ends a child process with `signal` and waits for it. */
export async function stop(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return
  const exited = once(p, 'exit')
  p.kill(signal)
  await exited
}
