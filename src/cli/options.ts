/**
 * Flags shared by the commands that poll, and their conversion to API options.
 * Values are checked here (not with clipanion validators) so that every bad value is a
 * `UsageError` handled by {@link BaseCommand}: one line, exit code 2.
 */
import { Option, UsageError } from 'clipanion'

import type { PollOptions, TcpStateName } from '../api/options.js'
import { TCP_STATES } from '../api/options.js'
import { BaseCommand } from './base-command.js'

/** A command that dumps sockets: the shared flags. */
export abstract class PollCommand extends BaseCommand {
  json = Option.Boolean('--json', false, { description: 'Print JSON lines instead of a table' })
  family = Option.Array('--family', { description: 'Address family to dump: inet or inet6 (repeatable; default both)' })
  state = Option.Array('--state', { description: `TCP state to dump (repeatable): ${Object.keys(TCP_STATES).join(', ')}` })
  excludeLocal = Option.Boolean('--exclude-local', false, { description: 'Skip loopback, link-local, multicast and unspecified addresses' })
  excludeSrcport = Option.Array('--exclude-srcport', { description: 'Skip sockets with this local port (repeatable)' })
  excludeDstip = Option.Array('--exclude-dstip', { description: 'Skip sockets whose peer is in this address or CIDR (repeatable)' })
  netns = Option.String('--netns', { description: 'Watch this network namespace (a name under /var/run/netns, or a path)' })

  /** The shared flags as {@link PollOptions}; throws `UsageError` on a bad value. */
  pollOptions(): PollOptions {
    const families = this.family?.map((x) => {
      if (x !== 'inet' && x !== 'inet6') throw new UsageError(`--family must be inet or inet6, not ${JSON.stringify(x)}`)
      return x
    })
    const states = this.state?.map((s) => {
      if (!Object.hasOwn(TCP_STATES, s)) throw new UsageError(`unknown --state ${JSON.stringify(s)}`)
      return s as TcpStateName
    })
    const excludeSrcPorts = this.excludeSrcport?.map((p) => parseInteger('--exclude-srcport', p, 1, 65535))
    const netns = this.netns === undefined ? undefined : this.netns.includes('/') ? this.netns : `/var/run/netns/${this.netns}`
    return { families, states, excludeLocal: this.excludeLocal, excludeSrcPorts, excludeDst: this.excludeDstip, netns }
  }
}

/** Parses an integer flag value in `[min, max]`, or throws a `UsageError` naming the flag. */
export function parseInteger(flag: string, value: string, min: number, max: number): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`)
  }
  return n
}

/** Parses a positive number flag value, or throws a `UsageError`. */
export function parsePositive(flag: string, value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, not ${JSON.stringify(value)}`)
  return n
}
