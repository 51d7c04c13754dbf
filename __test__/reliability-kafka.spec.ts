/**
 * Anonymization on the Kafka output (issue 15): with `--anonymize-ip netblock` every
 * message's `RawIDM` carries the /24 of both addresses, like the archive of the same run.
 * Through the CLI flags only, against a real broker (scripts/kafka.sh), so the test holds
 * whatever producer implements the sink. Skips (saying so) only without Java and Maven.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Kafka, logLevel } from 'kafkajs'

import { kafkaBrokerForFile } from './helpers/kafka-broker.js'
import { archiveFiles } from './helpers/collector.js'
import { scrapeIn, startCollectorAs, stopAs, zstdLines } from './helpers/faults.js'
import { netnsPair, nodeIn, runClients, SERVER } from './helpers/netns-pair.js'

const PORT = 45_800
const { broker: B, serial } = kafkaBrokerForFile('reliability-kafka.spec')

/** Every message value of `topic`, once it holds at least `n`. */
async function values(topic: string, n: number): Promise<string[]> {
  const kafka = new Kafka({ clientId: 'tcpinfo-faults', brokers: [B.address], logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: `faults-${topic}` })
  const out: string[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${out.length} of ${n}`)), 60_000)
      void consumer.run({
        eachMessage: async ({ message }) => {
          out.push(String(message.value))
          if (out.length >= n) {
            clearTimeout(timer)
            resolve()
          }
        },
      })
    })
  } finally {
    await consumer.disconnect()
  }
  return out
}

serial('anonymization on: Kafka messages carry only the /24 of each address', async (t) => {
  t.timeout(180_000)
  const pair = netnsPair(`faults${process.pid % 1000}k`, 190)
  t.teardown(() => pair.destroy())
  const server = nodeIn(pair.b, SERVER(pair.addrB, PORT, 20_000))
  t.teardown(() => server.child.kill())
  await server.lines.next()
  const out = mkdtempSync(join(tmpdir(), 'tcpinfo-faults-kafka-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const topic = `faults-anon-${process.pid}`
  const c = await startCollectorAs([], ['--output', out, '--netns', pair.pathA, '--prom', '127.0.0.1:0', '--flush-interval', '100ms', '--anonymize-ip', 'netblock', '--kafka-brokers', B.address, '--kafka-topic', topic])
  t.teardown(() => c.child.kill('SIGKILL'))
  await runClients(pair, PORT, [5_000, 50_000], 50)
  await new Promise((r) => setTimeout(r, 500))
  const deadline = Date.now() + 60_000
  while (!/^tcpinfo_sink_queued_bytes\{sink="kafka"\} 0$/m.test(scrapeIn(undefined, c.prom as string)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
  t.is((await stopAs(c.child)).code, 0, c.stderr())
  const archived = archiveFiles(out).flatMap((f) => zstdLines(f).slice(1))
  t.true(archived.length > 0)
  const got = await values(topic, archived.length)
  t.is(got.length, archived.length)
  const netA = pair.addrA.replace(/\.\d+$/, '.0')
  const netB = pair.addrB.replace(/\.\d+$/, '.0')
  for (const v of got) {
    const idm = Buffer.from((JSON.parse(v) as { RawIDM: string }).RawIDM, 'base64')
    t.deepEqual([idm.subarray(8, 12).join('.'), idm.subarray(24, 28).join('.')], [netA, netB])
    t.false(v.includes(pair.addrB) || v.includes(pair.addrA))
  }
  t.deepEqual([...got].sort(), [...archived].sort(), 'the same anonymized lines as the archive')
})
