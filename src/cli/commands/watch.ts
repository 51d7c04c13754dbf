/** `tcpinfo watch`: the opened, changed and closed connections of every poll. */
import { Option } from 'clipanion'

import { watch } from '../../api/watch.js'
import { connectionJson } from '../format/connection-json.js'
import { toJsonLine } from '../format/json.js'
import { renderTable, rowOf } from '../format/table.js'
import { parseInteger, parsePositive, PollCommand } from '../options.js'

const MARKS = { opened: '+', changed: '~', closed: '-' } as const

export class WatchCommand extends PollCommand {
  static override paths = [['watch']]
  static override usage = PollCommand.Usage({
    category: 'Inspect',
    description: 'Print the TCP connections that open, change and close, poll after poll, until Ctrl-C',
    details: 'The first poll lists every current connection as opened (+); later polls print changed (~) and closed (-) ones. Closed connections carry their final counters from the kernel\'s destroy events.',
    examples: [
      ['Watch every 10 ms (the default)', '$0 watch'],
      ['JSON lines, one poll per second, 5 polls', '$0 watch --json --interval 1000 --count 5'],
    ],
  })

  interval = Option.String('--interval', '10', { description: 'Poll interval in milliseconds (default 10)' })
  count = Option.String('--count', { description: 'Stop after this many polls' })

  async run(): Promise<number> {
    const intervalMs = parsePositive('--interval', this.interval)
    const count = this.count === undefined ? undefined : parseInteger('--count', this.count, 1, Number.MAX_SAFE_INTEGER)
    const options = { ...this.pollOptions(), intervalMs }
    const ac = new AbortController()
    const stop = (): void => ac.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    const out = this.context.stdout
    try {
      let polls = 0
      for await (const batch of watch({ ...options, signal: ac.signal })) {
        const conns = batch.connections
        if (this.json) {
          for (const c of conns) out.write(toJsonLine(connectionJson(c, batch)))
        } else if (conns.length > 0) {
          out.write(renderTable(conns.map(rowOf), conns.map((c) => MARKS[c.kind])))
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
}
