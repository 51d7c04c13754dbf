#!/usr/bin/env node
/**
 * The `tcpinfo` executable: the process-level decisions live here. Colours only on a
 * terminal and never with `NO_COLOR`; a closed stdout (`tcpinfo … | head`) is an ordinary
 * end, exit 0 without a word.
 */
import type { WriteStream } from 'node:tty'

import { Cli } from 'clipanion'

import { outputClosed } from '../api/host.js'
import { runCli } from './cli.js'

/** How often a silent command checks whether its stdout's reader has gone, ms. */
const OUTPUT_CHECK_MS = 250

function stdoutClosed(): boolean {
  try {
    return outputClosed(1)
  } catch {
    return false
  }
}

/** 1 (no colours) unless `stream` is a terminal and `NO_COLOR` is unset or empty. */
function colorDepth(stream: NodeJS.WriteStream): number {
  if (process.env.NO_COLOR) return 1
  if (!stream.isTTY) return 1
  return (stream as WriteStream).getColorDepth?.() ?? 1
}

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0)
  process.stderr.write(`tcpinfo: cannot write to stdout: ${e.message}\n`)
  process.exit(1)
})

// Writes find a closed pipe only when there is something to write; `watch` may have
// nothing to print for long, so the pipe is also checked on a timer.
if (!process.stdout.isTTY) {
  const timer = setInterval(() => {
    if (stdoutClosed()) process.exit(0)
  }, OUTPUT_CHECK_MS)
  timer.unref()
}

process.exitCode = await runCli(process.argv.slice(2), { ...Cli.defaultContext, colorDepth: colorDepth(process.stdout) })
