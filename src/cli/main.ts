#!/usr/bin/env node
/** The `tcpinfo` executable. */
import { Cli } from 'clipanion'

import { runCli } from './cli.js'

process.exitCode = await runCli(process.argv.slice(2), Cli.defaultContext)
