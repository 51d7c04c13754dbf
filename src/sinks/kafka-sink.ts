/**
 * Kafka as a sink (issue 12): one message per reported record, key = the connection's
 * UUID (one connection's records stay in one partition, in order), value = the M-Lab
 * `ArchivalRecord` line (format `archival`) or flat JSON of the decoded fields (`decoded`),
 * headers `host`, `netns` and `kind`.
 *
 * The producer is native (`crates/tcpinfo-kafka`, rskafka, pure Rust) and runs on its own
 * thread: `offer()` hands it the poll's index and lines regions (and the payloads for
 * `decoded`) in one call, as the archive writer gets them; no JS runs per record. It
 * batches by size and linger, one request in flight per partition, `acks=all`, compression
 * zstd/lz4/gzip/none, keeps a buffer bounded in bytes that drops the oldest (counted),
 * reconnects with backoff, and on `close()` delivers until a deadline and reports what it
 * could not. Records without a line (closes found by the sweep, which the archive does not
 * write either) are not exported. See docs/ARCHITECTURE.md, "The Kafka sink".
 */
import { hostname } from 'node:os'

import type { Batch } from '../api/batch.js'
import type { Logger } from '../log.js'
import { callNative, native, normalizeNativeError, type NativeKafkaProducer } from '../native.js'
import type { Sink, SinkCounters } from './sink.js'

/** Compression codecs of the record batches. */
export const KAFKA_COMPRESSIONS = ['none', 'gzip', 'lz4', 'zstd'] as const
export type KafkaCompression = (typeof KAFKA_COMPRESSIONS)[number]
/** What is exported: every poll, every Nth poll's records (opens and closes always), or only opens and closes. */
export type KafkaSample = { every: number } | 'opens-closes'
/** Message values: the ArchivalRecord line, or flat JSON of the decoded fields (`schema` 1). */
export const KAFKA_FORMATS = ['archival', 'decoded'] as const
export type KafkaFormat = (typeof KAFKA_FORMATS)[number]
/** SASL mechanisms. */
export const KAFKA_SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number]

export interface KafkaSinkOptions {
  /** `host:port` list. */
  brokers: readonly string[]
  topic: string
  /** The UUID prefix of the keys (`<prefix>_<cookie %016X>`); must be the batches' prefix. */
  uuidPrefix: string
  /** The `netns` header of records from the collector's own namespace (default `''`). */
  netns?: string
  compression?: KafkaCompression
  /** Value format (default `archival`). */
  format?: KafkaFormat
  /** Bytes of queued keys and values beyond which the oldest records are dropped (default 64 MiB). */
  bufferBytes?: number
  /** Bytes of records (keys, values, headers) per produce request at most (default 512 KiB). */
  batchBytes?: number
  /** A partition's partial batch is sent after this long, ms (default 20). */
  lingerMs?: number
  sample?: KafkaSample
  clientId?: string
  /** TLS (rustls): `true` for the system CAs, or PEM files. Not exercised by the tests beyond parsing. */
  tls?: boolean | { caFile?: string; certFile?: string; keyFile?: string }
  /** SASL authentication (use TLS with `PLAIN`). */
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: string }
  log?: Logger
}

/** Counters of the Kafka sink beyond {@link SinkCounters} (records = messages). */
export interface KafkaSinkStats {
  /** Records made into messages and queued for the broker. */
  queued: number
  /** Records the broker acknowledged. */
  delivered: number
  /** Bytes of keys and values acknowledged. */
  deliveredBytes: number
  /** Records dropped (oldest first) because the buffer was full, or whole polls while the producer thread was behind. */
  dropped: number
  /** Records left out by sampling. */
  sampledOut: number
  /** Produce requests sent. */
  requests: number
  /** Produce requests that failed (each retried). */
  sendErrors: number
  /** Connection attempts that failed (each retried). */
  connectErrors: number
  /** Records still queued when `close()` gave up. */
  undelivered: number
  /** Records in the buffer now; bytes of their keys and values. */
  bufferedRecords: number
  bufferedBytes: number
  /** Polls handed over and not yet made into messages by the producer thread. */
  intakePolls: number
  /** Partitions of the topic (0 before the first connection). */
  partitions: number
}

/** Failing to deliver for this long makes the sink unhealthy, ms. */
const STUCK_MS = 30_000

export class KafkaSink implements Sink {
  readonly name = 'kafka'
  readonly topic: string
  readonly #native: NativeKafkaProducer
  readonly #log: Logger | undefined
  readonly #prefix: string
  readonly #netns: string
  readonly #decoded: boolean
  readonly #empty = Buffer.alloc(0)
  #offered = 0
  #closed: Promise<void> | undefined

  /** @throws {TcpinfoError} `ERR_CONFIG` for a bad option (named in the message). */
  constructor(options: KafkaSinkOptions) {
    this.topic = options.topic
    this.#log = options.log
    this.#prefix = options.uuidPrefix
    this.#netns = options.netns ?? ''
    this.#decoded = options.format === 'decoded'
    const sample = options.sample === undefined ? undefined : options.sample === 'opens-closes' ? 'opens-closes' : String(options.sample.every)
    const tls = options.tls === true ? {} : options.tls || undefined
    const Native = native().NativeKafkaProducer
    this.#native = callNative(
      () =>
        new Native({
          brokers: [...options.brokers],
          topic: options.topic,
          uuidPrefix: options.uuidPrefix,
          host: hostname(),
          netns: this.#netns,
          format: options.format,
          compression: options.compression,
          bufferBytes: options.bufferBytes,
          batchBytes: options.batchBytes,
          lingerMs: options.lingerMs,
          sample,
          clientId: options.clientId,
          tls: tls !== undefined,
          tlsCaFile: tls?.caFile,
          tlsCertFile: tls?.certFile,
          tlsKeyFile: tls?.keyFile,
          saslMechanism: options.sasl?.mechanism,
          saslUsername: options.sasl?.username,
          saslPassword: options.sasl?.password,
        }),
    )
  }

  /** Hands the poll to the producer thread (one native call, regions copied once). Never blocks. */
  offer(batch: Batch): boolean {
    this.#offered++
    // Empty polls are handed over too: `sample: { every: N }` counts polls, not batches with records.
    if (this.#closed) return true
    if (batch.uuidPrefix !== this.#prefix) {
      this.#log?.limited('kafka-prefix', 60_000, 'error', 'kafka', `batch UUID prefix ${JSON.stringify(batch.uuidPrefix)} is not the sink's ${JSON.stringify(this.#prefix)}: not exported`)
      return true
    }
    const ns = batch.namespaces
    const namespaces = ns.length > 1 || ns.some((n) => n.uuidTag) ? ns.map((n) => ({ uuidTag: n.uuidTag, netns: n.host ? '' : (n.name ?? `net:[${n.inode}]`) })) : undefined
    try {
      this.#native.offer(batch.index, batch.lines, this.#decoded ? batch.payloads : this.#empty, batch.seq, Number(batch.timestampNs / 1_000_000n), namespaces)
    } catch (e) {
      this.#log?.limited('kafka-offer', 60_000, 'error', 'kafka', `offer failed: ${(normalizeNativeError(e) as Error).message}`)
    }
    const err = this.#native.takeError()
    if (err) this.#log?.limited('kafka-send', 60_000, 'warn', 'kafka', `delivery failing (retrying with backoff): ${err}`)
    return true
  }

  /** Kafka-specific counters. */
  stats(): KafkaSinkStats {
    const s = this.#native.stats()
    return {
      queued: s.queued,
      delivered: s.delivered,
      deliveredBytes: s.deliveredBytes,
      dropped: s.dropped,
      sampledOut: s.sampledOut,
      requests: s.requests,
      sendErrors: s.sendErrors,
      connectErrors: s.connectErrors,
      undelivered: s.undelivered,
      bufferedRecords: s.bufferedRecords,
      bufferedBytes: s.bufferedBytes,
      intakePolls: s.intakePolls,
      partitions: s.partitions,
    }
  }

  counters(): SinkCounters {
    const s = this.#native.stats()
    // Items: messages in the buffer plus polls not yet made into messages; bytes: the buffer's (its bound).
    return { offered: this.#offered, droppedBatches: 0, droppedRecords: s.dropped + s.undelivered, queuedItems: s.bufferedRecords + s.intakePolls, queuedBytes: s.bufferedBytes }
  }

  unhealthy(): string | undefined {
    const since = this.#native.stats().failingSinceMs
    if (since > 0 && Date.now() - since > STUCK_MS) return `kafka: no delivery for ${Math.round((Date.now() - since) / 1000)} s`
    return undefined
  }

  /** Delivers until `deadlineMs` from now, then stops; what is left is counted as undelivered and logged. Idempotent. */
  close(deadlineMs: number): Promise<void> {
    this.#closed ??= this.#close(deadlineMs)
    return this.#closed
  }

  async #close(deadlineMs: number): Promise<void> {
    const report = await this.#native.close(deadlineMs).catch((e: unknown) => Promise.reject(normalizeNativeError(e)))
    if (report.undelivered > 0) this.#log?.log('error', 'kafka', `${report.undelivered} records not delivered to ${this.topic} before the stop deadline`)
  }
}
