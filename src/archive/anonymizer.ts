/**
 * M-Lab's `-anonymize.ip` for every output, not only the archive: `BatchAnonymizer.apply()`
 * returns a copy of a poll's batch whose payloads and `ArchivalRecord` lines carry
 * anonymized addresses (the archive writer's rule and keep-list, in Rust: one native call
 * per poll). The collector offers that copy to the outputs that send addresses out of the
 * process (event socket, Kafka); the archive writer anonymizes its own copy of each line.
 */
import { Batch } from '../api/batch.js'
import { callNative, native, type NativeAnonymizer, type NativeBatch } from '../native.js'

export class BatchAnonymizer {
  readonly #native: NativeAnonymizer

  /**
   * @param method `netblock`: v4 /24, v6 /48, v4-mapped /24; `none`: copies unchanged.
   * @param keep addresses never anonymized (default: the local interfaces' addresses).
   * @throws {TcpinfoError} `ERR_CONFIG` for a bad method or address.
   */
  constructor(method: 'none' | 'netblock', keep?: string[]) {
    const Native = native().NativeAnonymizer
    this.#native = callNative(() => new Native({ method, ...(keep ? { keep } : {}) }))
  }

  /** A copy of `batch` with every address anonymized (same index, same record order). */
  apply(batch: Batch): Batch {
    const { payloads, lines } = callNative(() => this.#native.batch(batch.index, batch.payloads, batch.lines))
    const b = {
      seq: batch.seq,
      timestampNs: batch.timestampNs,
      socketsSeen: batch.socketsSeen,
      complete: batch.complete,
      part: batch.part,
      more: batch.more,
      warnings: batch.warnings,
      stats: batch.stats,
      namespaces: batch.namespaces.map((n) => ({ inode: n.inode, host: n.host, uuidTag: n.uuidTag, ...(n.name === null ? {} : { name: n.name }) })),
      index: batch.index,
      payloads,
      lines,
    }
    return new Batch(b as unknown as NativeBatch, batch.uuidPrefix)
  }
}
