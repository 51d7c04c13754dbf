/** `tcpinfo watch`: the opened, changed and closed connections of every poll. */
import type { Writable } from 'node:stream'

import type { Batch } from '../../api/batch.js'
import { watch } from '../../api/watch.js'
import { connectionJson } from '../format/connection-json.js'
import { toJsonLine } from '../format/json.js'
import { MARKS, WatchTable } from '../format/watch-table.js'
import { WatchFlagsCommand } from '../options.js'

export class WatchCommand extends WatchFlagsCommand {
  static override paths = [['watch']]
  static override usage = WatchFlagsCommand.Usage({
    category: 'Inspect',
    description: 'Print the TCP connections that open, change and close, poll after poll, until Ctrl-C',
    details: `
      The first poll lists every current connection (${MARKS.initial}); later polls print opened (${MARKS.opened}), changed (${MARKS.changed}) and closed (${MARKS.closed}) ones, and (${MARKS.unseen}) for connections that closed before any poll saw them. Changed rows name the columns that changed. Closed connections carry their final counters from the kernel's destroy events.

      Warnings, incomplete polls and skipped polls go to stderr, one line each.

      With --json, one object per connection (docs/json-output.md, "schema": 1): times in µs unless the name says otherwise (lastDataSent… in ms), rates in bytes/s, 64-bit counters as decimal strings, families as "inet"/"inet6".
    `,
    examples: [
      ['Watch every 10 ms (the default)', '$0 watch'],
      ['JSON lines, one poll per second, 5 polls', '$0 watch --json --interval 1000 --count 5'],
      ['State changes of connections to port 443 only', '$0 watch --state-only --state connected --exclude-local'],
    ],
  })

  async run(): Promise<number> {
    const options = this.watchOptions()
    const count = this.countLimit()
    const ac = new AbortController()
    const stop = (): void => ac.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    const out = this.context.stdout
    const table = new WatchTable((s) => out.write(s), terminalRows(out))
    try {
      let polls = 0
      for await (const batch of watch({ ...options, signal: ac.signal })) {
        this.reportProblems(batch)
        if (this.json) {
          let text = ''
          for (const c of batch.connections) text += toJsonLine(connectionJson(c, batch))
          if (text) out.write(text)
        } else {
          table.add(batch)
        }
        if (count !== undefined && ++polls >= count) break
      }
    } catch (e) {
      if (!ac.signal.aborted) throw e
    } finally {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
    return 0
  }

  /** Warnings, an incomplete poll and skipped polls: one stderr line each. */
  reportProblems(batch: Batch): void {
    const err = this.context.stderr
    for (const w of batch.warnings) err.write(`tcpinfo: poll ${batch.seq}: warning ${w.code}: ${w.message}\n`)
    if (!batch.complete && batch.warnings.length === 0) err.write(`tcpinfo: poll ${batch.seq}: incomplete dump; no close inferred from absence\n`)
    const skipped = batch.stats.skippedPolls
    if (skipped > 0) err.write(`tcpinfo: ${skipped} poll(s) skipped before poll ${batch.seq}: output too slow; their changes are in this poll\n`)
  }
}

/** Rows of the terminal `out` writes to (for repeating the header), 0 if not a terminal. */
function terminalRows(out: Writable): number {
  const tty = out as Writable & { isTTY?: boolean; rows?: number }
  return tty.isTTY && tty.rows ? Math.max(tty.rows - 2, 5) : 0
}
