/**
 * `rtt()`: passive RTT from packets (TCP timestamps, as pping) as an async iterator of
 * batches, from a live interface or a pcap/pcapng file. One native `next()` per batch,
 * one in flight at a time; `break`, `return()`, `await using` or the abort signal stop
 * the capture thread and close its socket.
 */
import { nativeIterator } from '../api/native-iterator.js'
import { TcpinfoError } from '../errors.js'
import { native, type NativeRttBatch, type NativeRttOptions } from '../native.js'
import { decodeSamples, decodeStats, decodeSummaries, type RttFlowSummary, type RttSample, type RttStats } from './records.js'


/** Options of {@link rtt}. Exactly one of `interface` and `pcap`. */
export interface RttOptions extends Omit<NativeRttOptions, 'interface' | 'pcap'> {
  /** Live capture on this interface (`'any'`: all). Needs `CAP_NET_RAW`. */
  interface?: string
  /** Read this pcap or pcapng file. */
  pcap?: string
  /** Stops the capture when aborted. */
  signal?: AbortSignal
}

/** One batch of a capture. */
export class RttBatch {
  readonly #raw: NativeRttBatch
  #samples?: RttSample[]
  #summaries?: RttFlowSummary[]
  /** Counters so far (cumulative). */
  readonly stats: RttStats
  /** Whether this is the capture's last batch (end of file, or closed). */
  readonly last: boolean

  constructor(raw: NativeRttBatch) {
    this.#raw = raw
    this.stats = decodeStats(raw.stats)
    this.last = raw.last
  }

  /** The samples, decoded on first access. */
  get samples(): RttSample[] {
    return (this.#samples ??= decodeSamples(this.#raw.samples))
  }

  /** Per-flow summaries of flows with new samples (periodic with `summaryIntervalMs`, and in the last batch). */
  get summaries(): RttFlowSummary[] {
    return (this.#summaries ??= decodeSummaries(this.#raw.summaries))
  }
}

/** The iterator returned by {@link rtt}. */
export interface RttCapture extends AsyncIterableIterator<RttBatch>, AsyncDisposable {
  /** Stops the capture now; pending and later `next()` calls end the iteration. */
  close(): void
  /** Asks the capture to finish: the iteration goes on to the last batch (with the final per-flow summaries), then ends. */
  stop(): void
}

/**
 * Measures TCP round-trip times passively from packets: live from an interface, or from
 * a pcap/pcapng file. Each sample is the time from a packet with a TSval passing the
 * capture point to the first reverse packet echoing it.
 *
 * @example
 * for await (const b of rtt({ pcap: 'trace.pcapng' })) {
 *   for (const s of b.samples) console.log(s.flow.src, s.rttNs / 1e6, 'ms')
 * }
 * @throws {TcpinfoError} `ERR_CONFIG` for bad options (synchronously); from the first
 * `next()`: `ERR_PERMISSION` without `CAP_NET_RAW`, `ERR_IO` when the file cannot be
 * read, `ERR_CAPTURE_FILE` when it is not a capture, `ERR_NETNS`, `ERR_SOCKET`. An
 * aborted signal rejects `next()` with an `AbortError`.
 */
export function rtt(options: RttOptions): RttCapture {
  const { signal, ...nativeOptions } = options
  if ((options.interface === undefined) === (options.pcap === undefined)) {
    throw new TcpinfoError('ERR_CONFIG', 'rtt() needs exactly one of interface and pcap')
  }
  const { iterator, current } = nativeIterator(
    () => {
      const NativeRttClass = native().NativeRtt
      return new NativeRttClass(nativeOptions)
    },
    (b: NativeRttBatch) => new RttBatch(b),
    signal,
  )
  return {
    ...iterator,
    stop() {
      current()?.close()
    },
    [Symbol.asyncIterator]() {
      return this
    },
  }
}
