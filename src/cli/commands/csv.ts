/** `tcpinfo csv`: archives to CSV in M-Lab csvtool's format, or to decoded JSON lines. */
import { Option } from 'clipanion'

import { csvColumns, writeArchiveCsv, writeArchiveJson } from '../../archive/csv.js'
import type { ArchiveReader } from '../../archive/read-archive.js'
import { BaseCommand } from '../base-command.js'
import { Progress } from '../format/progress.js'

export class CsvCommand extends BaseCommand {
  static override paths = [['csv']]
  static override usage = BaseCommand.Usage({
    category: 'Archives',
    description: 'Convert archives to CSV (M-Lab csvtool columns) or decoded JSON lines',
    details: 'Reads .jsonl.zst, .jsonl and raw netlink dump files, directories (recursively, in time order) and `-` (stdin). Writes one row per data record with exactly the columns, names, order and value formats of M-Lab\'s csvtool (docs/CSV.md); header lines are not rows. A corrupt input stops with one error naming the file and offset, after every valid row before it, unless --skip-errors.',
    examples: [
      ['One connection', '$0 csv 2024/05/01/host_1714521600_000000000001E240.00000.jsonl.zst > conn.csv'],
      ['A day of archives, three columns', '$0 csv --columns Timestamp,IDM.SockID.Cookie,TCP.BytesAcked /var/spool/tcpinfo/2024/05/01'],
      ['Decoded JSON lines from stdin', 'zstd -dc f.jsonl.zst | $0 csv --json -'],
    ],
  })

  inputs = Option.Rest({ name: 'FILE|DIR|-' })
  columns = Option.String('--columns', { description: 'Comma-separated columns to write (see --list-columns)' })
  listColumns = Option.Boolean('--list-columns', false, { description: 'Print the available columns and exit' })
  json = Option.Boolean('--json', false, { description: 'Write decoded JSON lines instead of CSV' })
  skipErrors = Option.Boolean('--skip-errors', false, { description: 'Skip bad records and files (counted on stderr) instead of stopping' })

  async run(): Promise<number> {
    const out = this.context.stdout
    if (this.listColumns) {
      out.write(`${csvColumns().join('\n')}\n`)
      return 0
    }
    const inputs = this.inputs.length > 0 ? this.inputs : ['-']
    const progress = new Progress(this.context.stderr as NodeJS.WritableStream & { isTTY?: boolean })
    const options = { onError: this.skipErrors ? ('skip' as const) : ('throw' as const) }
    const onBatch = (r: ArchiveReader): void => progress.update(r)
    const reader = this.json
      ? await writeArchiveJson(inputs, out, { ...options, onBatch })
      : await writeArchiveCsv(inputs, out, { ...options, ...(this.columns ? { columns: this.columns.split(',') } : {}), onBatch })
    progress.done(reader)
    if (reader.stats.errors > 0) this.context.stderr.write(`tcpinfo: ${reader.stats.errors} errors skipped; first: ${reader.errors[0]?.message ?? '?'}\n`)
    return 0
  }
}
