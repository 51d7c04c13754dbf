/** `writeReport()`: archives to one self-contained HTML report. */
import { writeFile } from 'node:fs/promises'

import type { ArchiveReader, ReadArchiveOptions } from '../archive/read-archive.js'
import type { ArchiveInput } from '../archive/sources.js'
import { analyzeArchive, type AnalyzedConnection } from './analyze.js'
import { renderReport } from './html.js'

/** Options of {@link writeReport}. */
export interface ReportOptions extends ReadArchiveOptions {
  /** Page title (default `tcpinfo report`). */
  title?: string
}

/**
 * Reads archives and writes an HTML report to `outPath`: a sortable summary of every
 * connection and, per connection, charts and a verdict on what limited it.
 * @example
 * await writeReport('/var/spool/tcpinfo/2024/05/01', 'report.html')
 * @throws {ArchiveReadError} as {@link readArchive}, unless `onError: 'skip'`.
 */
export async function writeReport(input: ArchiveInput | readonly ArchiveInput[], outPath: string, options: ReportOptions = {}): Promise<{ connections: AnalyzedConnection[]; reader: ArchiveReader }> {
  const r = await analyzeArchive(input, options)
  await writeFile(outPath, renderReport(r.connections, options.title ?? 'tcpinfo report'))
  return r
}
