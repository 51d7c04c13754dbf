/** `tcpinfo events`: prints the open and close events of an M-Lab v1 event socket. */
import { Option } from 'clipanion'

import { events } from '../../eventsocket/client.js'
import { BaseCommand } from '../base-command.js'

export class EventsCommand extends BaseCommand {
  static override paths = [['events']]
  static override usage = BaseCommand.Usage({
    category: 'Inspect',
    description: "Print the open and close events of a collector's event socket (M-Lab's protocol v1)",
    details: `
      Connects to the unix socket given by --socket (a \`tcpinfo collect --eventsocket PATH\` or M-Lab tcp-info's -tcpinfo.eventsocket), prints one line per event, and reconnects with backoff when the socket goes away, until Ctrl-C. Our collector first sends an open event for each connection already open.

      With --json, each event's line exactly as received: {"Event":0|1,"Timestamp":…,"UUID":…,"ID":{…}|null}.
    `,
    examples: [
      ['Follow the events', '$0 events --socket /var/local/tcpeventsocket/tcpevents.sock'],
      ['The raw JSON lines', '$0 events --socket ./events.sock --json'],
    ],
  })

  socket = Option.String('--socket', { required: true, description: 'Path of the event socket' })
  json = Option.Boolean('--json', false, { description: 'Print the JSON lines as received' })
  count = Option.String('--count', { description: 'Stop after this many events' })

  async run(): Promise<number> {
    const limit = this.count === undefined ? undefined : Number(this.count)
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
      this.context.stderr.write(`tcpinfo: --count must be a positive integer, got ${JSON.stringify(this.count)}\n`)
      return 2
    }
    const ac = new AbortController()
    const stop = (): void => ac.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    const out = this.context.stdout
    const err = this.context.stderr
    let n = 0
    try {
      const stream = events(this.socket, {
        signal: ac.signal,
        onState: (s) => {
          if (!s.connected) err.write(`tcpinfo: ${this.socket}: ${s.error?.message ?? 'disconnected'}; retrying in ${s.retryInMs} ms\n`)
        },
      })
      for await (const e of stream) {
        if (this.json) out.write(`${e.line}\n`)
        else {
          const id = e.id ? ` ${e.id.SrcIP}:${e.id.SPort} ${e.id.DstIP}:${e.id.DPort}` : ''
          out.write(`${e.timestamp} ${e.type.padEnd(5)} ${e.uuid}${id}\n`)
        }
        if (limit !== undefined && ++n >= limit) break
      }
    } finally {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
    return 0
  }
}
