/** Runs the CLI in-process against PassThrough streams (clipanion's test pattern). */
import { PassThrough } from 'node:stream'

import { Cli } from 'clipanion'

import { runCli } from '../../src/cli/cli.js'

/** Exit code and everything written to stdout and stderr. */
export async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] }
  stdout.on('data', (c: Buffer) => chunks.out.push(c))
  stderr.on('data', (c: Buffer) => chunks.err.push(c))
  const code = await runCli(argv, { ...Cli.defaultContext, stdout, stderr, colorDepth: 1 })
  return { code, stdout: Buffer.concat(chunks.out).toString(), stderr: Buffer.concat(chunks.err).toString() }
}
