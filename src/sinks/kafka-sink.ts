/**
 * Kafka as a sink (issue 12): one message per reported record, key = the connection's
 * UUID (one connection's records stay in one partition, in order), value = the M-Lab
 * `ArchivalRecord` line (format `archival`) or flat JSON of the decoded fields (`decoded`),
 * headers `host`, `netns` and `kind`.
 *
 * The producer is kafkajs (pure JS). `offer()` copies each record's line into a queue
 * bounded in bytes and returns; a pump sends the queue in batches (by size, and at least
 * every `lingerMs`) with `acks=all`, one request in flight, so per-connection order holds.
 * A failed send puts its messages back at the head and retries with backoff (reconnecting
 * first); while the broker is away the queue fills, then the oldest records are dropped
 * and counted. `close()` flushes until a deadline and counts what it could not deliver.
 * Records without a line (closes found by the sweep, which the archive does not write
 * either) are not exported.
 */
import { createRequire } from 'node:module'
import { hostname } from 'node:os'

import type * as KafkaJs from 'kafkajs'

import type { Batch } from '../api/batch.js'
import type { Logger } from '../log.js'
import { FLAG_HAS_RECORD, INDEX, RECORD_KINDS } from '../uapi.js'
import { decodedRecord } from './kafka-decoded.js'
import type { Sink, SinkCounters } from './sink.js'

/** Compression codecs this sink supports (kafkajs ships gzip; zstd and lz4 need codec plugins it does not bundle). */
export const KAFKA_COMPRESSIONS = ['none', 'gzip'] as const
export type KafkaCompression = (typeof KAFKA_COMPRESSIONS)[number]
/** What is exported: every poll, every Nth poll's records (opens and closes always), or only opens and closes. */
export type KafkaSample = { every: number } | 'opens-closes'
/** Message values: the ArchivalRecord line, or flat JSON of the decoded fields (src/sinks/kafka-decoded.ts). */
export const KAFKA_FORMATS = ['archival', 'decoded'] as const
export type KafkaFormat = (typeof KAFKA_FORMATS)[number]

export interface KafkaSinkOptions {
  /** `host:port` list. */
  brokers: readonly string[]
  topic: string
  /** The UUID prefix of the keys (`<prefix>_<cookie %016X>`). */
  uuidPrefix: string
  /** The `netns` header (empty: the collector's own namespace). */
  netns?: string
  compression?: KafkaCompression
  /** Value format (default `archival`). */
  format?: KafkaFormat
  /** Bytes of queued record values beyond which the oldest are dropped (default 64 MiB). */
  bufferBytes?: number
  /** Bytes per produce request at most (default 1 MiB). */
  batchBytes?: number
  /** A partial batch is sent after this long, ms (default 20). */
  lingerMs?: number
  sample?: KafkaSample
  clientId?: string
  log?: Logger
}

/** Counters of the Kafka sink beyond {@link SinkCounters}. */
export interface KafkaSinkStats {
  /** Records queued for the broker. */
  queued: number
  /** Records the broker acknowledged. */
  delivered: number
  /** Records dropped (oldest first) because the buffer was full. */
  dropped: number
  /** Records left out by sampling. */
  sampledOut: number
  /** Produce requests that failed (each retried). */
  sendErrors: number
  /** Records still queued when `close()` gave up. */
  undelivered: number
}

/** kafkajs, loaded on first use (about 100 ms): `tcpinfo` without Kafka never pays for it. */
let kafkajs: typeof KafkaJs | undefined
function client(): typeof KafkaJs {
  kafkajs ??= createRequire(import.meta.url)('kafkajs') as typeof KafkaJs
  return kafkajs
}

/** Backoff between failed sends, ms. */
const BACKOFF_MIN_MS = 100
const BACKOFF_MAX_MS = 5000
/** Failing to deliver for this long makes the sink unhealthy, ms. */
const STUCK_MS = 30_000

interface Item {
  key: string
  value: Buffer
  kind: string
}

export class KafkaSink implements Sink {
  readonly name = 'kafka'
  readonly topic: string
  readonly #o: Required<Omit<KafkaSinkOptions, 'log' | 'netns' | 'clientId' | 'sample'>> & { sample: KafkaSample; netns: string }
  readonly #log: Logger | undefined
  readonly #producer: KafkaJs.Producer
  readonly #compression: KafkaJs.CompressionTypes
  /** Queue of records (FIFO with a moving head). */
  #q: Item[] = []
  #head = 0
  #bytes = 0
  #offered = 0
  #polls = 0
  readonly #s: KafkaSinkStats = { queued: 0, delivered: 0, dropped: 0, sampledOut: 0, sendErrors: 0, undelivered: 0 }
  #connected = false
  #pumping = false
  #closing = false
  #closed: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  #backoff = 0
  #failingSince = 0
  readonly #host = hostname()

  constructor(options: KafkaSinkOptions) {
    if (options.brokers.length === 0) throw new RangeError('kafka: at least one broker is needed')
    if (!options.topic) throw new RangeError('kafka: a topic is needed')
    this.topic = options.topic
    this.#log = options.log
    this.#o = {
      brokers: options.brokers,
      topic: options.topic,
      uuidPrefix: options.uuidPrefix,
      netns: options.netns ?? '',
      compression: options.compression ?? 'none',
      format: options.format ?? 'archival',
      bufferBytes: options.bufferBytes ?? 64 << 20,
      batchBytes: options.batchBytes ?? 1 << 20,
      lingerMs: options.lingerMs ?? 20,
      sample: options.sample ?? { every: 1 },
    }
    const { CompressionTypes, Kafka, logLevel } = client()
    this.#compression = this.#o.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None
    const kafka = new Kafka({
      clientId: options.clientId ?? 'tcpinfo',
      brokers: [...options.brokers],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    })
    this.#producer = kafka.producer({ allowAutoTopicCreation: true, maxInFlightRequests: 1, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 } })
  }

  offer(batch: Batch): boolean {
    this.#offered++
    if (this.#closing) return true
    const poll = this.#polls++
    const sample = this.#o.sample
    const everyPoll = sample !== 'opens-closes' && poll % sample.every === 0
    const index = batch.index
    const lines = batch.lines
    const n = batch.size
    for (let i = 0; i < n; i++) {
      const off = i * INDEX.entryLen
      if (!(index[off + INDEX.flags]! & FLAG_HAS_RECORD)) continue
      const kindByte = index[off + INDEX.kind]!
      if (!everyPoll && kindByte === 1) {
        this.#s.sampledOut++
        continue
      }
      let value: Buffer
      if (this.#o.format === 'decoded') {
        value = Buffer.from(JSON.stringify(decodedRecord(batch.connections[i]!, batch)))
      } else {
        const lineOff = index.readUInt32LE(off + INDEX.lineOff)
        const lineLen = index.readUInt32LE(off + INDEX.lineLen)
        // A copy: the batch's native memory is not pinned by the queue; without the newline.
        value = Buffer.from(lines.subarray(lineOff, lineOff + Math.max(0, lineLen - 1)))
      }
      const cookie = index.readBigUInt64LE(off + INDEX.cookie)
      const key = `${this.#o.uuidPrefix}_${cookie.toString(16).toUpperCase().padStart(16, '0')}`
      this.#push({ key, value, kind: RECORD_KINDS[kindByte] ?? 'changed' })
    }
    this.#schedule()
    return true
  }

  #push(item: Item): void {
    const size = item.value.length + item.key.length
    while (this.#q.length - this.#head > 0 && this.#bytes + size > this.#o.bufferBytes) {
      const old = this.#q[this.#head++] as Item
      this.#bytes -= old.value.length + old.key.length
      this.#s.dropped++
    }
    this.#q.push(item)
    this.#bytes += size
    this.#s.queued++
  }

  get #length(): number {
    return this.#q.length - this.#head
  }

  #schedule(): void {
    if (this.#pumping || this.#timer || this.#length === 0) return
    const full = this.#bytes >= this.#o.batchBytes
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#pump()
    }, this.#backoff > 0 ? this.#backoff : full ? 0 : this.#o.lingerMs)
  }

  /** Sends the queue, one request at a time, until it is empty or a send fails. */
  async #pump(): Promise<void> {
    if (this.#pumping) return
    this.#pumping = true
    try {
      while (this.#length > 0) {
        if (!this.#connected) {
          await this.#producer.connect()
          this.#connected = true
        }
        const take: Item[] = []
        let bytes = 0
        while (this.#head + take.length < this.#q.length && (take.length === 0 || bytes < this.#o.batchBytes)) {
          const it = this.#q[this.#head + take.length] as Item
          take.push(it)
          bytes += it.value.length + it.key.length
        }
        const messages: KafkaJs.Message[] = take.map((it) => ({ key: it.key, value: it.value, headers: { host: this.#host, netns: this.#o.netns, kind: it.kind } }))
        await this.#producer.send({ topic: this.topic, acks: -1, compression: this.#compression, messages })
        // Records dropped during the send (a prefix of `take`) already left the queue.
        for (let j = take.indexOf(this.#q[this.#head] as Item); j >= 0 && j < take.length; j++) {
          const it = take[j] as Item
          this.#head++
          this.#bytes -= it.value.length + it.key.length
        }
        this.#s.delivered += take.length
        this.#compact()
        this.#backoff = 0
        this.#failingSince = 0
      }
    } catch (e) {
      this.#s.sendErrors++
      if (this.#failingSince === 0) this.#failingSince = Date.now()
      this.#backoff = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, this.#backoff * 2))
      this.#log?.limited('kafka-send', 60_000, 'warn', 'kafka', `send failed (retrying in ${this.#backoff} ms): ${(e as Error).message}`)
      try {
        await this.#producer.disconnect()
      } catch {
        // reconnect on the next try
      }
      this.#connected = false
    } finally {
      this.#pumping = false
    }
    if (!this.#closing || this.#backoff === 0) this.#schedule()
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#q.length) {
      this.#q = this.#q.slice(this.#head)
      this.#head = 0
    }
  }

  /** Kafka-specific counters. */
  stats(): KafkaSinkStats {
    return { ...this.#s }
  }

  counters(): SinkCounters {
    return { offered: this.#offered, droppedBatches: 0, droppedRecords: this.#s.dropped + this.#s.undelivered, queuedItems: this.#length, queuedBytes: this.#bytes }
  }

  unhealthy(): string | undefined {
    if (this.#failingSince > 0 && Date.now() - this.#failingSince > STUCK_MS) return `kafka: no delivery for ${Math.round((Date.now() - this.#failingSince) / 1000)} s`
    return undefined
  }

  /** Flushes until `deadlineMs` from now, then disconnects; what is left is counted as undelivered. Idempotent. */
  close(deadlineMs: number): Promise<void> {
    this.#closed ??= this.#close(deadlineMs)
    return this.#closed
  }

  async #close(deadlineMs: number): Promise<void> {
    this.#closing = true
    const end = Date.now() + deadlineMs
    while (this.#length > 0 && Date.now() < end) {
      if (!this.#pumping) {
        if (this.#timer) clearTimeout(this.#timer)
        this.#timer = undefined
        this.#backoff = 0
        void this.#pump()
      }
      await new Promise((r) => setTimeout(r, 10))
    }
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#s.undelivered = this.#length
    if (this.#s.undelivered > 0) this.#log?.log('error', 'kafka', `${this.#s.undelivered} records not delivered to ${this.topic} before the stop deadline`)
    await Promise.race([this.#producer.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, Math.max(50, end - Date.now())).unref())])
  }
}
