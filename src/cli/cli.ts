/**
 * Builds the clipanion CLI and runs it. Parse errors (unknown flag, bad value, unknown
 * command) print one line and exit with code 2; see {@link BaseCommand} for the other
 * exit codes. Usage text shows value names (`--interval MS`) and has no colours unless
 * the context's stream is a terminal (see `main.ts`).
 */
import { readFileSync } from 'node:fs'

import { Builtins, Cli, type BaseContext, type CommandClass } from 'clipanion'

import { suggest } from '../config/schema.js'
import { EXIT_USAGE } from './base-command.js'
import { CollectCommand } from './commands/collect.js'
import { CsvCommand } from './commands/csv.js'
import { ReportCommand } from './commands/report.js'
import { EventsCommand } from './commands/events.js'
import { RttCommand } from './commands/rtt.js'
import { SnapshotCommand } from './commands/snapshot.js'
import { WatchCommand } from './commands/watch.js'
import { VALUE_NAMES } from './options.js'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

/** The commands, in help order. */
const COMMANDS: CommandClass<BaseContext>[] = [CollectCommand, SnapshotCommand, WatchCommand, EventsCommand, CsvCommand, ReportCommand, RttCommand]

/** clipanion's CLI with value names instead of `#0` in every usage text. */
class TcpinfoCli extends Cli<BaseContext> {
  override usage(...args: Parameters<Cli<BaseContext>['usage']>): string {
    return withValueNames(super.usage(...args))
  }
}

/**
 * Replaces clipanion's `--flag #0` placeholders with the flag's value name, and re-aligns
 * the option list whose column widths clipanion computed with the placeholders.
 */
export function withValueNames(usage: string): string {
  const named = usage.replace(/(--[a-z0-9-]+)((?:,-[a-z])?) #0/g, (_m, flag: string, short: string) => `${flag}${short} ${VALUE_NAMES[flag] ?? 'VALUE'}`)
  const optionLine = /^ {2}(-[-\w,]+(?: \S+)?) {2,}(\S.*)$/
  const lines = named.split('\n')
  const width = Math.max(0, ...lines.map((l) => optionLine.exec(l)?.[1]?.length ?? 0))
  return lines.map((l) => l.replace(optionLine, (_m, def: string, desc: string) => `  ${def.padEnd(width)}  ${desc}`)).join('\n')
}

/** The CLI with every command registered; colours only when `colorDepth` allows them. */
export function buildCli(colorDepth = 1): Cli<BaseContext> {
  const cli = new TcpinfoCli({ binaryLabel: 'tcpinfo', binaryName: 'tcpinfo', binaryVersion: pkg.version, enableColors: colorDepth > 1 })
  cli.register(Builtins.HelpCommand)
  cli.register(Builtins.VersionCommand)
  for (const c of COMMANDS) cli.register(c)
  return cli
}

/**
 * Spellings clipanion does not take, made into ones it does: `--flag -5` becomes
 * `--flag=-5` for flags that take a value, so a negative number gets the flag's own
 * message ("--interval must be …, got "-5"") instead of "Not enough arguments"; and Go's
 * boolean syntax `--flag=false`/`--flag=true` (M-Lab's `-exclude-local=false`) becomes
 * `--no-flag`/`--flag`.
 */
export function normalizeArgv(argv: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    const next = argv[i + 1]
    const bool = /^(--[a-z][\w.-]*)=(true|false)$/i.exec(a)
    if (bool && !Object.hasOwn(VALUE_NAMES, bool[1] as string)) {
      const name = (bool[1] as string).slice(2)
      out.push(bool[2]?.toLowerCase() === 'true' ? `--${name}` : `--no-${name}`)
    } else if (Object.hasOwn(VALUE_NAMES, a) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`)
      i++
    } else {
      out.push(a)
    }
  }
  return out
}

/** Runs `argv` and returns the exit code. */
export async function runCli(argv: string[], context: BaseContext): Promise<number> {
  const cli = buildCli(context.colorDepth)
  const args = normalizeArgv(argv)
  let command
  try {
    command = cli.process(args, context)
  } catch (e) {
    context.stderr.write(`tcpinfo: ${parseErrorLine(args, e)} (see 'tcpinfo --help')\n`)
    return EXIT_USAGE
  }
  return cli.run(command, context)
}

/** One line for a parse error; an unknown command lists the commands it may have meant. */
function parseErrorLine(args: readonly string[], e: unknown): string {
  const names = COMMANDS.flatMap((c) => (c.paths ?? []).map((p) => p.join(' ')))
  const first = args[0]
  if (first !== undefined && !first.startsWith('-') && !names.includes(first)) {
    const near = suggest(first, names)
    return `unknown command ${JSON.stringify(first)}; ${near ? `did you mean ${near}? ` : ''}commands: ${names.join(', ')}`
  }
  const text = (e as Error)?.message ?? String(e)
  return withValueNames(text.split('\n').find((l) => l.trim() !== '') ?? 'bad arguments')
    .replace(/^(Usage|Unknown Syntax) Error: /i, '')
    .trim()
}
