/**
 * Archives to CSV in M-Lab csvtool's format (columns, names, order and value formats:
 * docs/CSV.md), one row per data record. Rows are formatted in Rust, one call per batch,
 * and only the rows cross to JS.
 */
import { once } from 'node:events'

import { TcpinfoError } from '../errors.js'
import { callNative, native } from '../native.js'
import { readArchive, type ArchiveReader, type ReadArchiveOptions } from './read-archive.js'
import type { ArchiveInput } from './sources.js'

/** Options of {@link writeArchiveCsv} and {@link writeArchiveJson}. */
export interface ArchiveCsvOptions extends ReadArchiveOptions {
  /** Column names to write, in this order (default: all of csvtool's, in its order). */
  columns?: readonly string[]
  /** Called after each batch with the reader (for progress display). */
  onBatch?: (reader: ArchiveReader) => void
}

/** A minimal writable: Node streams and `process.stdout` fit. */
interface Sink {
  write(chunk: Buffer): boolean
  once(event: 'drain', listener: () => void): unknown
}

/** The names of M-Lab csvtool's columns, in its order (105; `TCP.LastDataRecv` twice, as csvtool). */
export function csvColumns(): string[] {
  return callNative(() => native().nativeCsvColumns())
}

function columnIndexes(names: readonly string[] | undefined): number[] {
  const all = csvColumns()
  if (!names) return all.map((_, i) => i)
  return names.map((n) => {
    const i = all.indexOf(n)
    if (i < 0) throw new TcpinfoError('ERR_CONFIG', `unknown CSV column '${n}' (see --list-columns)`)
    return i
  })
}

async function write(out: Sink, buf: Buffer): Promise<void> {
  if (!out.write(buf)) await once(out as unknown as NodeJS.EventEmitter, 'drain')
}

/**
 * Writes the CSV of `input` to `out`: the header line, then one row per data record, with
 * bounded memory (one batch at a time, waiting for `out` to drain).
 * @example
 * await writeArchiveCsv('conn.jsonl.zst', process.stdout)
 * @throws {TcpinfoError} `ERR_CONFIG` for an unknown column; `ERR_ARCHIVE` as {@link readArchive}.
 */
export async function writeArchiveCsv(input: ArchiveInput | readonly ArchiveInput[], out: Sink, options: ArchiveCsvOptions = {}): Promise<ArchiveReader> {
  const cols = columnIndexes(options.columns)
  const reader = readArchive(input, options)
  const n = native()
  await write(out, n.nativeCsvHeader(cols))
  for await (const rows of reader.csvChunks(cols)) {
    await write(out, rows)
    options.onBatch?.(reader)
  }
  return reader
}

/**
 * Writes the records of `input` to `out` as decoded JSON lines: `timestamp` (ISO, ms), `uuid`,
 * `sequence`, `source`, then every decoded field as `Connection.decoded` has them, 64-bit
 * counters as decimal strings. Made in Rust, one batch at a time, bounded memory.
 * @example
 * await writeArchiveJson('conn.jsonl.zst', process.stdout)
 * @throws {ArchiveReadError} as {@link readArchive}.
 */
export async function writeArchiveJson(input: ArchiveInput | readonly ArchiveInput[], out: Sink, options: ArchiveCsvOptions = {}): Promise<ArchiveReader> {
  const reader = readArchive(input, options)
  for await (const rows of reader.jsonChunks()) {
    await write(out, rows)
    options.onBatch?.(reader)
  }
  return reader
}
