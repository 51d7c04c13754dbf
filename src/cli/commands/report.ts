/** `tcpinfo report`: archives to a self-contained HTML report with charts and limit verdicts. */
import { Option, UsageError } from 'clipanion'

import { writeReport } from '../../report/write-report.js'
import { BaseCommand } from '../base-command.js'

export class ReportCommand extends BaseCommand {
  static override paths = [['report']]
  static override usage = BaseCommand.Usage({
    category: 'Archives',
    description: 'Write an HTML report of archived connections: summary, charts and what limited each flow',
    details: 'One self-contained file (uPlot inlined, no network access needed): a sortable table of connections (duration, bytes each way, throughput, min and median RTT, retransmissions, final state) and per connection RTT, cwnd, rate and bytes charts with a sender/receiver/network verdict from the kernel\'s busy_time, rwnd_limited and sndbuf_limited (docs/REPORT.md).',
    examples: [['A day of archives', '$0 report /var/spool/tcpinfo/2024/05/01 --out report.html']],
  })

  inputs = Option.Rest({ name: 'FILE|DIR' })
  out = Option.String('--out,-o', { description: 'Where to write the HTML (required)' })
  title = Option.String('--title', { description: 'Page title' })
  skipErrors = Option.Boolean('--skip-errors', false, { description: 'Skip bad records and files (counted on stderr) instead of stopping' })

  async run(): Promise<number> {
    if (!this.out) throw new UsageError('--out FILE is required')
    if (this.inputs.length === 0) throw new UsageError('give at least one archive file or directory')
    const { connections, reader } = await writeReport(this.inputs, this.out, { onError: this.skipErrors ? 'skip' : 'throw', ...(this.title ? { title: this.title } : {}) })
    this.context.stderr.write(`tcpinfo: ${connections.length} connections, ${reader.stats.records} records → ${this.out}${reader.stats.errors ? ` (${reader.stats.errors} errors skipped)` : ''}\n`)
    return 0
  }
}
