/** `tcpinfo snapshot`: every current TCP socket, once. */
import { snapshot } from '../../api/snapshot.js'
import { connectionJson } from '../format/connection-json.js'
import { toJsonLine } from '../format/json.js'
import { renderTable, rowOf } from '../format/table.js'
import { PollCommand } from '../options.js'

export class SnapshotCommand extends PollCommand {
  static override paths = [['snapshot']]
  static override usage = PollCommand.Usage({
    category: 'Inspect',
    description: 'List every TCP socket of the host once, like `ss -tinmeo`',
    details: `
      Dumps AF_INET and AF_INET6 TCP sockets through netlink inet_diag. By default the states are M-Lab's (all but SYN-RECV, TIME-WAIT and CLOSE).

      With --json, one object per socket (docs/json-output.md, "schema": 1): times in µs unless the name says otherwise, rates in bytes/s, 64-bit counters as decimal strings, families as "inet"/"inet6".
    `,
    examples: [
      ['Show a table', '$0 snapshot'],
      ['JSON lines of established IPv4 sockets', '$0 snapshot --json --family inet --state established'],
    ],
  })

  async run(): Promise<number> {
    const batch = await snapshot(this.pollOptions())
    const out = this.context.stdout
    if (this.json) {
      out.write(batch.connections.map((c) => toJsonLine(connectionJson(c, batch))).join(''))
    } else {
      out.write(renderTable(batch.connections.map(rowOf)))
    }
    return 0
  }
}
