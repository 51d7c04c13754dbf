/**
 * `tcpinfo collect`: the collector daemon, a drop-in for M-Lab's tcp-info. Flags are
 * parsed Go-style by the collector config (`src/config/collector-config.ts`) so that
 * M-Lab's deployment arguments and environment variables work verbatim.
 */
import { resolve } from 'node:path'

import { Option } from 'clipanion'

import { Collector, STOP_DEADLINE_MS } from '../../collector/collector.js'
import { collectorOptionsHelp, readRawConfig, resolveCollectorConfig } from '../../config/collector-config.js'
import { createLogger } from '../../log.js'
import { BaseCommand } from '../base-command.js'

/** After SIGTERM the process is gone within this, ms, whatever happens. */
const EXIT_BACKSTOP_MS = 1900

export class CollectCommand extends BaseCommand {
  static override paths = [['collect']]
  static override usage = BaseCommand.Usage({
    category: 'Collect',
    description: 'Archive every changed TCP connection into per-connection zstd JSONL files, as M-Lab tcp-info does',
    details: `
      Polls every TCP socket (every 10 ms by default) and writes each connection's changes to <output>/YYYY/MM/DD/<UUID>.<seq>.jsonl.zst in M-Lab tcp-info v1.9's format. Runs until SIGTERM or SIGINT (or --reps polls), then finishes every file and exits 0.

      Every flag also comes from an environment variable (the flag name upper-cased, non-alphanumerics as _: OUTPUT, FLUSH_INTERVAL, …) and from --config FILE (JSON or YAML, keys are flag names). A flag beats the environment, which beats the file. M-Lab's spellings work: -output=DIR, -exclude-local=false, -prometheusx.listen-address, -tcpinfo.eventsocket, -anonymize.ip. --print-config shows the effective configuration.

      Options:

${collectorOptionsHelp()}
    `,
    examples: [
      ['Archive into ./data', '$0 collect --output ./data'],
      ["M-Lab's deployment arguments", '$0 collect -output=/var/spool/ndt/tcpinfo -uuid-prefix-file=/var/local/uuid/prefix -tcpinfo.eventsocket=/var/local/tcpeventsocket/tcpevents.sock -prometheusx.listen-address=:9991 -anonymize.ip=none'],
      ['Show the effective configuration', 'OUTPUT=/tmp/x $0 collect --print-config'],
    ],
  })

  args = Option.Proxy()

  async run(): Promise<number> {
    const raw = readRawConfig(this.args, this.context.env)
    if (raw.help) {
      this.context.stdout.write(this.cli.usage(CollectCommand, { detailed: true }))
      return 0
    }
    const { config, sources } = resolveCollectorConfig(raw)
    if (raw.printConfig) {
      const shown = Object.fromEntries(Object.entries(config).map(([k, v]) => [k, { value: v, source: sources[k] }]))
      this.context.stdout.write(`${JSON.stringify(shown, null, 2)}\n`)
      return 0
    }
    const log = createLogger((line) => this.context.stderr.write(line), { format: config.logFormat, level: config.logLevel })
    const collector = new Collector(config, log)
    log.log('info', 'collector', `archiving every changed TCP connection into ${resolve(config.output)}`, {
      uuidPrefix: collector.uuidPrefix,
      intervalMs: config.intervalMs,
      rotateAgeMs: config.rotateAgeMs,
    })
    const stop = (signal: string): void => {
      log.log('info', 'collector', `${signal}: stopping, finishing files (deadline ${STOP_DEADLINE_MS} ms)`)
      setTimeout(() => {
        log.log('error', 'collector', `files not finished within ${EXIT_BACKSTOP_MS} ms of ${signal}; exiting`)
        process.exit(1)
      }, EXIT_BACKSTOP_MS).unref()
      collector.stop().catch(() => undefined)
    }
    const onTerm = (): void => stop('SIGTERM')
    const onInt = (): void => stop('SIGINT')
    process.once('SIGTERM', onTerm)
    process.once('SIGINT', onInt)
    try {
      await collector.done
    } finally {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
    }
    const s = collector.stats()
    log.log('info', 'collector', 'stopped', { polls: s.polls, records: s.archive.recordsWritten, files: s.archive.filesOpened, bytes: s.archive.bytesCompressed })
    return 0
  }
}
