/**
 * A real single-node Apache Kafka broker for one test file (scripts/kafka.sh: KRaft, from
 * Maven Central's jars), started before the file's tests and stopped after them. A file
 * whose machine lacks Java or Maven skips its broker tests, saying so once.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

export const KAFKA_SH = fileURLToPath(new URL('../../scripts/kafka.sh', import.meta.url))

/** The running broker: `address` is `127.0.0.1:PORT`, `dir` its data (for `kafka.sh stop|resume DIR`). */
export interface KafkaBroker {
  address: string
  dir: string
}

/**
 * Registers the file's `before`/`after.always` hooks; returns the broker (filled in by
 * `before`) and `serial`, which is `test.serial.skip` when the broker cannot run here.
 */
export function kafkaBrokerForFile(file: string): { broker: KafkaBroker; serial: typeof test.serial | typeof test.serial.skip } {
  const missing = ['java', 'mvn'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0)
  if (missing.length > 0) console.log(`${file}: SKIPPED: ${missing.join(' and ')} not installed (the broker needs Java 17 and Maven)`)
  const broker: KafkaBroker = { address: '', dir: '' }
  test.before((t) => {
    if (missing.length > 0) return
    t.timeout(400_000)
    execFileSync('bash', [KAFKA_SH, 'fetch'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 })
    broker.dir = mkdtempSync(join(tmpdir(), `tcpinfo-${file.replace(/\W+/g, '-')}-broker-`))
    const port = execFileSync('bash', [KAFKA_SH, 'start', broker.dir], { encoding: 'utf8', timeout: 180_000 }).trim()
    broker.address = `127.0.0.1:${port}`
  })
  test.after.always(() => {
    if (!broker.dir) return
    spawnSync('bash', [KAFKA_SH, 'stop', broker.dir], { timeout: 30_000 })
    rmSync(broker.dir, { recursive: true, force: true })
  })
  return { broker, serial: missing.length > 0 ? test.serial.skip : test.serial }
}
