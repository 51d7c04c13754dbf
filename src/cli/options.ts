/**
 * Flags shared by the commands that poll, parsed with the same schema fields as the
 * library's options (`src/config/poll-options.ts`), so a bad value gets the same message
 * with the flag's name: one line, exit code 2 (see {@link BaseCommand}). Every flag that
 * repeats also takes comma lists (`--exclude-srcport 22,80`).
 */
import { Option, UsageError } from 'clipanion'

import { cidrField, familyField, POLL_MODES, statesField, type PollOptions, type WatchOptions } from '../config/poll-options.js'
import { integer, list, number, oneOf, parseField, text, type Field } from '../config/schema.js'
import { TcpinfoError } from '../errors.js'
import { TCP_INFO_FIELDS } from '../uapi.js'
import { BaseCommand } from './base-command.js'

/**
 * Value names shown in usage instead of clipanion's `#0` (`--interval MS`). Also the set
 * of flags that take a value (every such flag must be listed), so that `--interval -5`
 * reaches the value check instead of reading `-5` as a flag, and `--flag=true|false` is
 * read as a boolean only for the others.
 */
export const VALUE_NAMES: Readonly<Record<string, string>> = {
  '--interval': 'MS',
  '--count': 'N',
  '--family': 'inet|inet6',
  '--state': 'NAME',
  '--exclude-srcport': 'PORT',
  '--exclude-dstip': 'CIDR',
  '--netns': 'NAME|PATH|all',
  '--max-cpu': 'FRACTION',
  '--poll-mode': 'netlink|bpf|auto',
  '--ignore-field': 'FIELD',
  '--uuid-prefix-file': 'FILE',
  '--interface': 'IF',
  '--pcap': 'FILE',
  '--summary': 'SECONDS',
  '--duration': 'SECONDS',
  '--socket': 'PATH',
  '--columns': 'LIST',
  '--out': 'FILE',
  '--title': 'TEXT',
}

/** Parses `text` for `flag` with a schema field; a bad value is a `UsageError` naming the flag. */
export function parseFlag<T>(field: Field<T>, flag: string, value: string): T {
  try {
    return parseField(field, value, flag)
  } catch (e) {
    if (e instanceof TcpinfoError) throw new UsageError(e.message)
    throw e
  }
}

/** A repeatable flag's values, comma lists split, parsed as one list. */
function parseList<T>(item: Field<T>, flag: string, values: string[] | undefined, max: number): T[] | undefined {
  if (values === undefined) return undefined
  return parseFlag(list(item, max, ''), flag, values.join(','))
}

const portField = integer(1, 65535, 'a local port')
const ignoreField = oneOf(TCP_INFO_FIELDS, 'a tcp_info field')

/** A command that dumps sockets: the shared flags. */
export abstract class PollCommand extends BaseCommand {
  json = Option.Boolean('--json', false, { description: 'Print JSON lines instead of a table (docs/json-output.md: schema 1, units µs for times unless noted, 64-bit counters as decimal strings)' })
  family = Option.Array('--family', { description: 'Address family to dump: inet or inet6 (repeatable or comma list; default both)' })
  state = Option.Array('--state', { description: 'TCP state to dump, as ss names them: established, syn-sent, listening, …, or a group: connected, synchronized, all (repeatable or comma list; default all but SYN-RECV, TIME-WAIT and CLOSE)' })
  excludeLocal = Option.Boolean('--exclude-local', false, { description: 'Skip loopback, link-local, multicast and unspecified addresses' })
  excludeSrcport = Option.Array('--exclude-srcport', { description: 'Skip sockets with this local port, 1-65535 (repeatable or comma list)' })
  excludeDstip = Option.Array('--exclude-dstip', { description: 'Skip sockets whose peer is in this address or CIDR network (repeatable or comma list)' })
  netns = Option.String('--netns', { description: 'Watch this network namespace: a name under /var/run/netns, a path, or all (every namespace of the host)' })
  uuidPrefixFile = Option.String('--uuid-prefix-file', { description: 'File holding the UUID prefix (default <hostname>_<boot time>_unsafe)' })

  /** The shared flags as {@link PollOptions}; throws `UsageError` on a bad value. */
  pollOptions(): PollOptions {
    const families = parseList(familyField, '--family', this.family, 2) as (2 | 10)[] | undefined
    const states = this.state === undefined ? undefined : parseFlag(statesField, '--state', this.state.join(','))
    const netns = this.netns === undefined ? undefined : parseFlag(text('netns'), '--netns', this.netns)
    return {
      families,
      states,
      excludeLocal: this.excludeLocal,
      excludeSrcPorts: parseList(portField, '--exclude-srcport', this.excludeSrcport, 1024),
      excludeDst: parseList(cidrField, '--exclude-dstip', this.excludeDstip, 4096),
      netns: netns === undefined || netns === 'all' ? netns : netns.includes('/') ? netns : `/var/run/netns/${netns}`,
      uuidPrefixFile: this.uuidPrefixFile === undefined ? undefined : parseFlag(text('file'), '--uuid-prefix-file', this.uuidPrefixFile),
    }
  }
}

/** The flags of commands that poll repeatedly. */
export abstract class WatchFlagsCommand extends PollCommand {
  interval = Option.String('--interval', '10', { description: 'Poll interval in milliseconds, 0.1 to 86400000 (default 10)' })
  count = Option.String('--count', { description: 'Stop after this many polls' })
  stateOnly = Option.Boolean('--state-only', false, { description: 'Report a connection as changed only when its TCP state changes' })
  ignoreField = Option.Array('--ignore-field', { description: 'tcp_info field (camelCase, e.g. rtt) whose changes are ignored; replaces the default lastDataSent,lastAckSent,lastDataRecv,lastAckRecv (repeatable or comma list)' })
  destroyEvents = Option.Boolean('--destroy-events', true, { description: 'Use the kernel\'s destroy events for final counters (--no-destroy-events to rely on the poll sweep alone)' })
  reportUnconnected = Option.Boolean('--report-unconnected', false, { description: 'Also report sockets closed without ever having a peer' })
  maxCpu = Option.String('--max-cpu', { description: 'CPU budget of the poller thread, a fraction of one core (0.2 = 20%): the interval stretches to stay within it' })
  pollMode = Option.String('--poll-mode', { description: 'netlink (default): dump every socket each poll; bpf: a BPF iterator reports only changed sockets (root or CAP_BPF+CAP_PERFMON, kernel BTF); auto: bpf where possible' })

  /** The flags as {@link WatchOptions}; throws `UsageError` on a bad value. */
  watchOptions(): WatchOptions {
    const ignore = parseList(ignoreField, '--ignore-field', this.ignoreField, TCP_INFO_FIELDS.length)
    return {
      ...this.pollOptions(),
      intervalMs: parseFlag(number(0.1, 86_400_000, ''), '--interval', this.interval),
      change: { stateOnly: this.stateOnly, ...(ignore ? { ignoreTcpInfoFields: ignore } : {}) },
      destroyEvents: this.destroyEvents,
      reportUnconnected: this.reportUnconnected,
      ...(this.maxCpu === undefined ? {} : { maxCpu: parseFlag(number(0.001, 1, ''), '--max-cpu', this.maxCpu) }),
      ...(this.pollMode === undefined ? {} : { mode: parseFlag(oneOf(POLL_MODES, ''), '--poll-mode', this.pollMode) }),
    }
  }

  /** `--count`, if given. */
  countLimit(): number | undefined {
    return this.count === undefined ? undefined : parseFlag(integer(1, Number.MAX_SAFE_INTEGER, ''), '--count', this.count)
  }
}
