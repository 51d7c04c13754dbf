/**
 * The base of every tcpinfo command: one place decides exit codes.
 * 0 on success and when stdout is closed early (EPIPE, e.g. `| head`), 2 on a usage
 * error (bad flag value, one line on stderr), 1 on any other failure (one line on stderr).
 */
import { Command, UsageError } from 'clipanion'

import { TcpinfoError } from '../errors.js'

/** Exit code of a usage error, as in ripgrep and most Unix tools. */
export const EXIT_USAGE = 2

export abstract class BaseCommand extends Command {
  abstract run(): Promise<number | void>

  async execute(): Promise<number> {
    try {
      return (await this.run()) ?? 0
    } catch (e) {
      return this.fail(e)
    }
  }

  /** Writes one line about `e` to stderr and returns the exit code. */
  fail(e: unknown): number {
    if ((e as NodeJS.ErrnoException)?.code === 'EPIPE') return 0
    if (e instanceof UsageError || (e instanceof TcpinfoError && e.code === 'ERR_CONFIG')) {
      this.context.stderr.write(`tcpinfo: ${(e as Error).message}\n`)
      return EXIT_USAGE
    }
    const code = e instanceof TcpinfoError ? ` [${e.code}]` : ''
    this.context.stderr.write(`tcpinfo: ${(e as Error)?.message ?? String(e)}${code}\n`)
    return 1
  }
}
