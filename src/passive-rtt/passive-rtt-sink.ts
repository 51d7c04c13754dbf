/**
 * `--passive-rtt IF`: the passive minimum RTT of each of the host's own connections,
 * beside the kernel's `tcpi_min_rtt`, written when the connection closes to a side file
 * of the archive (the ArchivalRecord lines stay byte-compatible with M-Lab):
 *
 *   <output>/passive-rtt/YYYY/MM/DD/passive-rtt.jsonl
 *   {"Timestamp":T,"UUID":U,"ID":{SockID},"KernelMinRTT":µs|null,"PassiveMinRTT":µs|null,
 *    "PassiveMaxRTT":µs|null,"PassiveSamples":N}
 *
 * `Timestamp` and `UUID` are those of the connection's last archived record; `ID` is
 * M-Lab's `SockID` as on the event socket. Both minimums cover the whole connection (the
 * close record carries the kernel's final `tcp_info`; the capture has matched every
 * segment by then): a close is looked up {@link LOOKUP_DELAY_MS} after it was reported, so
 * the capture thread has read its last packets (ring blocks retire after 20 ms).
 *
 * Each connection is looked up once; the capture then forgets its flows, so a busy host's
 * short connections do not fill the capture's flow table while they wait out its idle time.
 *
 * Bounded and lossy like every sink but the archive: at most {@link MAX_PENDING} closes
 * wait, at most {@link MAX_WRITE_BUFFER} bytes wait for the file; beyond either, lines are
 * dropped and counted. The capture runs on its own native thread: this sink only walks
 * each batch's index for closes, and makes one native lookup per timer tick.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'

import type { Batch } from '../api/batch.js'
import type { BatchAnonymizer } from '../archive/anonymizer.js'
import { goTime, sockIdJson, sockIdOf, IDM_ID_END } from '../eventsocket/protocol.js'
import type { Logger } from '../log.js'
import { LOOKUP_ID_LEN, type RttMonitor } from '../rtt/monitor.js'
import type { Sink, SinkCounters } from '../sinks/sink.js'
import { FLAG_HAS_RECORD, INDEX } from '../uapi.js'

/** How long after a close is reported its passive RTT is read, ms. */
export const LOOKUP_DELAY_MS = 250
/** Most closes waiting for their lookup. */
export const MAX_PENDING = 65_536
/** Most bytes waiting to be written to the side file. */
export const MAX_WRITE_BUFFER = 4 << 20
/** Upper bounds of the passive/kernel ratio histogram (a +Inf bucket follows). */
export const RATIO_BOUNDS = [0.5, 0.8, 0.9, 0.95, 0.99, 1.01, 1.05, 1.1, 1.25, 2]

const KIND_CLOSED = 2
const IDM_LEN = 72
const INET_DIAG_INFO = 2
const TCPI_MIN_RTT = 148

interface Pending {
  due: number
  id: Buffer
  /** The anonymized `id` written to the side file, with `--anonymize-ip netblock`. */
  shownId: Buffer | undefined
  cookie: bigint
  uuid: string
  timestampNs: bigint
  kernelMinRttUs: number | null
}

/** Counters of the passive RTT side file. */
export interface PassiveRttCounters {
  /** Closed connections looked up. */
  looked: number
  /** ... of which the capture had samples. */
  matched: number
  /** Lines written to the side file. */
  lines: number
  /** Closes or lines dropped (queue or write buffer full, or a write error). */
  dropped: number
  /** Non-cumulative counts of passive min / kernel min per {@link RATIO_BOUNDS} bucket, then +Inf. */
  ratio: number[]
  ratioSum: number
}

export class PassiveRttSink implements Sink {
  readonly name = 'passive-rtt'
  readonly monitor: RttMonitor
  readonly #dir: string
  readonly #log: Logger
  readonly #anonymizer: BatchAnonymizer | undefined
  readonly #pending: Pending[] = []
  #head = 0
  #offered = 0
  readonly #c: PassiveRttCounters = { looked: 0, matched: 0, lines: 0, dropped: 0, ratio: new Array<number>(RATIO_BOUNDS.length + 1).fill(0), ratioSum: 0 }
  #file: { day: string; stream: WriteStream } | undefined
  readonly #timer: NodeJS.Timeout
  #closed = false

  /** `output`: the archive root; the side file goes under `<output>/passive-rtt/`. */
  /**
   * @param anonymizer with `--anonymize-ip netblock`: the lines carry the anonymized
   * `SockID` (the capture is still looked up by the real one).
   */
  constructor(monitor: RttMonitor, output: string, log: Logger, anonymizer?: BatchAnonymizer) {
    this.monitor = monitor
    this.#anonymizer = anonymizer
    this.#dir = join(output, 'passive-rtt')
    this.#log = log
    this.#timer = setInterval(() => this.#drain(Date.now()), 100)
    this.#timer.unref()
  }

  offer(batch: Batch): boolean {
    this.#offered++
    const n = batch.size
    const idx = batch.index
    const p = batch.payloads
    const now = Date.now()
    let shown: Buffer | undefined
    for (let i = 0, off = 0; i < n; i++, off += INDEX.entryLen) {
      if (idx[off] !== KIND_CLOSED || !((idx[off + INDEX.flags] as number) & FLAG_HAS_RECORD)) continue
      const start = idx.readUInt32LE(off + INDEX.payloadOff)
      const end = start + idx.readUInt32LE(off + INDEX.payloadLen)
      if (end - start < IDM_LEN) continue
      const cookie = idx.readBigUInt64LE(off + INDEX.cookie)
      if (this.#pending.length - this.#head >= MAX_PENDING) {
        this.#c.dropped++
        continue
      }
      this.#pending.push({
        due: now + LOOKUP_DELAY_MS,
        // Copies: the batch's buffers are released after the poll.
        id: Buffer.from(p.subarray(start, start + IDM_ID_END)),
        shownId: this.#anonymizer ? Buffer.from((shown ??= this.#anonymizer.apply(batch).payloads).subarray(start, start + IDM_ID_END)) : undefined,
        cookie,
        uuid: batch.recordUuid(i, cookie),
        timestampNs: batch.recordTimestampNs(i),
        kernelMinRttUs: kernelMinRtt(p, start, end),
      })
    }
    return true
  }

  /** Looks up and writes every close due by `now`. */
  #drain(now: number): void {
    let end = this.#head
    while (end < this.#pending.length && this.#pending[end]!.due <= now) end++
    if (end === this.#head) return
    const due = this.#pending.slice(this.#head, end)
    this.#head = end
    if (this.#head > 4096 && this.#head * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#head)
      this.#head = 0
    }
    const found = this.monitor.lookup(Buffer.concat(due.map((d) => d.id.subarray(0, LOOKUP_ID_LEN))))
    const c = this.#c
    let text = ''
    due.forEach((d, i) => {
      const r = found[i]
      c.looked++
      const us = (ns: number | undefined): string => (ns === undefined ? 'null' : String(Math.round(ns / 1000)))
      if (r) {
        c.matched++
        if (d.kernelMinRttUs) {
          const ratio = r.minNs / 1000 / d.kernelMinRttUs
          const b = RATIO_BOUNDS.findIndex((le) => ratio <= le)
          c.ratio[b < 0 ? RATIO_BOUNDS.length : b]!++
          c.ratioSum += ratio
        }
      }
      text +=
        `{"Timestamp":"${goTime(d.timestampNs)}","UUID":${JSON.stringify(d.uuid)},"ID":${sockIdJson(sockIdOf(d.shownId ?? d.id, d.cookie))},` +
        `"KernelMinRTT":${d.kernelMinRttUs ?? 'null'},"PassiveMinRTT":${us(r?.minNs)},"PassiveMaxRTT":${us(r?.maxNs)},"PassiveSamples":${r?.samples ?? 0}}\n`
    })
    this.#write(text, due.length, new Date(Number(due[0]!.timestampNs / 1_000_000n)))
  }

  #write(text: string, lines: number, at: Date): void {
    const day = at.toISOString().slice(0, 10).replace(/-/g, '/')
    try {
      if (this.#file?.day !== day) {
        this.#file?.stream.end()
        mkdirSync(join(this.#dir, day), { recursive: true })
        const stream = createWriteStream(join(this.#dir, day, 'passive-rtt.jsonl'), { flags: 'a' })
        stream.on('error', (e) => this.#log.limited('passive-rtt-write', 60_000, 'error', 'passive-rtt', `side file: ${e.message}`))
        this.#file = { day, stream }
      }
      if (this.#file.stream.writableLength > MAX_WRITE_BUFFER) {
        this.#c.dropped += lines
        return
      }
      this.#file.stream.write(text)
      this.#c.lines += lines
    } catch (e) {
      this.#c.dropped += lines
      this.#log.limited('passive-rtt-write', 60_000, 'error', 'passive-rtt', `side file: ${(e as Error).message}`)
    }
  }

  /** The side file's counters (a copy). */
  passiveCounters(): PassiveRttCounters {
    return { ...this.#c, ratio: [...this.#c.ratio] }
  }

  counters(): SinkCounters {
    const queued = this.#pending.length - this.#head
    return { offered: this.#offered, droppedBatches: 0, droppedRecords: this.#c.dropped, queuedItems: queued, queuedBytes: queued * (IDM_ID_END + 64) }
  }

  unhealthy(): string | undefined {
    return undefined
  }

  /** Writes what is pending now (the capture has had its chance), ends the file, stops the capture. */
  async close(deadlineMs: number): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.#drain(Infinity)
    this.monitor.close()
    const stream = this.#file?.stream
    if (!stream) return
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, deadlineMs)
      stream.end(() => {
        clearTimeout(t)
        resolve()
      })
    })
  }
}

/** `tcpi_min_rtt` (µs) of the record at `[start, end)`, or `null` when absent or not available. */
function kernelMinRtt(p: Buffer, start: number, end: number): number | null {
  for (let a = start + IDM_LEN; a + 4 <= end; ) {
    const len = p.readUInt16LE(a)
    if (len < 4) break
    if (p.readUInt16LE(a + 2) === INET_DIAG_INFO) {
      if (len < 4 + TCPI_MIN_RTT + 4 || a + len > end) return null
      const v = p.readUInt32LE(a + 4 + TCPI_MIN_RTT)
      return v === 0xffffffff ? null : v
    }
    a += (len + 3) & ~3
  }
  return null
}
