/** Pins the public API: the module's exports and package.json `exports` (rolldown's exports-consistency check). */
import { readFileSync } from 'node:fs'

import test from 'ava'

import * as api from '../src/index.js'

test('the package exports exactly the documented API', (t) => {
  t.deepEqual(Object.keys(api).sort(), ['AbortError', 'ArchiveBatch', 'ArchiveReadError', 'ArchiveReader', 'ArchiveWriter', 'Batch', 'BoundedQueue', 'Connection', 'ERROR_CODES', 'EventSocketServer', 'KAFKA_COMPRESSIONS', 'KAFKA_FORMATS', 'KafkaSink', 'MetricsSink', 'NullSink', 'RttBatch', 'STATE_GROUPS', 'STATE_NAMES', 'TCP_STATES', 'TcpinfoError', 'WARNING_CODES', 'analyzeArchive', 'csvColumns', 'events', 'flowKey', 'parseEvent', 'readArchive', 'rtt', 'snapshot', 'verdictOf', 'watch', 'writeArchiveCsv', 'writeArchiveJson', 'writeReport'])
})

test('package.json exports and bin point at the built files', (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, unknown>
  t.deepEqual(pkg['exports'], { '.': { types: './dist/index.d.ts', default: './dist/index.js' }, './package.json': './package.json' })
  t.deepEqual(pkg['bin'], { tcpinfo: './dist/cli/main.js' })
})
