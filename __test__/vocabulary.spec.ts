/**
 * Facts defined once per language agree (issue 8): error and warning codes, TCP states,
 * families, the batch index layout and the option bounds of the TypeScript side
 * (src/uapi.ts, src/config/poll-options.ts) equal the Rust core's (through
 * `nativeVocabulary()`).
 */
import test from 'ava'

import { MAX_INTERVAL_MS, MAX_QUEUE_DEPTH, MIN_MAX_CPU, QUEUED_BYTES_RANGE } from '../src/config/poll-options.js'
import { ERROR_CODES, TcpinfoError } from '../src/errors.js'
import { native, normalizeNativeError } from '../src/native.js'
import * as uapi from '../src/uapi.js'

const v = native().nativeVocabulary()

test('error codes: the TypeScript list is the core\'s plus the TS-only ones', (t) => {
  t.deepEqual([...uapi.CORE_ERROR_CODES], v.errorCodes)
  for (const c of [...v.errorCodes, ...uapi.TS_ERROR_CODES, ...v.warningCodes]) t.true(ERROR_CODES.includes(c as never), c)
})

test('warning codes agree', (t) => {
  t.deepEqual([...uapi.WARNING_CODES], v.warningCodes)
})

test('TCP states, families and the index layout agree', (t) => {
  t.deepEqual([...uapi.STATE_NAMES], v.stateNames)
  t.is(uapi.ALL_STATES, v.allStates)
  t.is(uapi.AF_INET, v.afInet)
  t.is(uapi.AF_INET6, v.afInet6)
  t.is(uapi.INDEX.entryLen, v.indexEntryLen)
  t.is(uapi.INDEX.netns, v.indexNetnsOffset)
  t.is(uapi.FLAG_HAS_RECORD, v.flagHasRecord)
  t.is(uapi.FLAG_FROM_DESTROY_EVENT, v.flagFromDestroyEvent)
  t.is(uapi.FLAG_UNSEEN, v.flagUnseen)
  t.deepEqual([...uapi.TCP_INFO_FIELDS], v.tcpInfoFields)
})

test('option bounds of the schema are within the core\'s invariants', (t) => {
  t.is(MAX_QUEUE_DEPTH, v.maxQueueDepth)
  t.is(MAX_INTERVAL_MS, v.maxIntervalMs)
  t.is(QUEUED_BYTES_RANGE[1], v.maxMaxQueuedBytes)
  t.is(MIN_MAX_CPU, v.minMaxCpu)
})

test('a coded native error keeps its code; an uncoded one is ERR_INTERNAL', (t) => {
  const e = normalizeNativeError(new Error('[ERR_INTERNAL] the poller thread panicked: boom')) as TcpinfoError
  t.is(e.code, 'ERR_INTERNAL')
  t.is(e.message, 'the poller thread panicked: boom')
  t.is((normalizeNativeError(new Error('Failed to convert')) as TcpinfoError).code, 'ERR_INTERNAL')
})
