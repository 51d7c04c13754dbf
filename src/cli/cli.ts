/**
 * Builds the clipanion CLI and runs it. Parse errors (unknown flag, bad value) print one
 * line and exit with code 2; see {@link BaseCommand} for the other exit codes.
 */
import { readFileSync } from 'node:fs'

import { Builtins, Cli, type BaseContext } from 'clipanion'

import { EXIT_USAGE } from './base-command.js'
import { RttCommand } from './commands/rtt.js'
import { SnapshotCommand } from './commands/snapshot.js'
import { WatchCommand } from './commands/watch.js'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

/** The CLI with every command registered. */
export function buildCli(): Cli<BaseContext> {
  const cli = new Cli({ binaryLabel: 'tcpinfo', binaryName: 'tcpinfo', binaryVersion: pkg.version })
  cli.register(Builtins.HelpCommand)
  cli.register(Builtins.VersionCommand)
  cli.register(SnapshotCommand)
  cli.register(WatchCommand)
  cli.register(RttCommand)
  return cli
}

/** Runs `argv` and returns the exit code. */
export async function runCli(argv: string[], context: BaseContext): Promise<number> {
  const cli = buildCli()
  let command
  try {
    command = cli.process(argv, context)
  } catch (e) {
    context.stderr.write(`tcpinfo: ${oneLine(e)} (see 'tcpinfo --help')\n`)
    return EXIT_USAGE
  }
  return cli.run(command, context)
}

function oneLine(e: unknown): string {
  const text = (e as Error)?.message ?? String(e)
  return (text.split('\n').find((l) => l.trim() !== '') ?? 'bad arguments').replace(/^(Usage|Unknown Syntax) Error: /i, '').trim()
}
