/** `tcpinfo rtt`: passive RTT from packets (TCP timestamps), live or from a capture file. */
import { Command, Option, UsageError } from 'clipanion'

import { rtt, type RttOptions } from '../../rtt/rtt.js'
import type { RttStats } from '../../rtt/records.js'
import { BaseCommand } from '../base-command.js'
import { sampleLine, statsLine, SUMMARY_HEADER, summaryLine } from '../format/rtt.js'
import { number } from '../../config/schema.js'
import { parseFlag } from '../options.js'

export class RttCommand extends BaseCommand {
  static override paths = [['rtt']]
  static override usage = Command.Usage({
    category: 'Inspect',
    description: 'Measure TCP round-trip times passively from packets (TCP timestamps, as pping)',
    details:
      'Each sample is the time from a packet carrying a TSval passing the capture point to the first packet of the reverse direction echoing it (TSecr): the round trip from here to the echoing host (the flow\'s source) and back. Live capture uses an AF_PACKET ring and needs CAP_NET_RAW; files may be pcap or pcapng. Counters go to stderr at the end.',
    examples: [
      ['Samples from a capture file', '$0 rtt --pcap trace.pcapng'],
      ['Per-flow summaries every 10 s on eth0, as JSON lines', '$0 rtt --interface eth0 --summary 10 --json'],
    ],
  })

  interface = Option.String('--interface,-i', { description: 'Capture live on this interface (any: all interfaces); needs CAP_NET_RAW' })
  pcap = Option.String('--pcap,-r', { description: 'Read this pcap or pcapng file' })
  netns = Option.String('--netns', { description: 'Capture inside this network namespace (a name under /run/netns, or a path)' })
  json = Option.Boolean('--json', false, { description: 'Print JSON lines' })
  summary = Option.String('--summary', { description: 'Print per-flow summaries (count, min, p50, p90, max) every this many seconds instead of samples' })
  duration = Option.String('--duration', { description: 'Stop a live capture after this many seconds' })

  async run(): Promise<number> {
    if ((this.interface === undefined) === (this.pcap === undefined)) throw new UsageError('give exactly one of --interface and --pcap')
    const summaryS = this.summary === undefined ? undefined : parseFlag(number(0.001, 86_400, ''), '--summary', this.summary)
    const durationS = this.duration === undefined ? undefined : parseFlag(number(0.001, 31_536_000, ''), '--duration', this.duration)
    const options: RttOptions = { interface: this.interface, pcap: this.pcap, netns: this.netns, summaryIntervalMs: summaryS && summaryS * 1000 }
    const capture = rtt(options)
    const stop = (): void => capture.stop()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    const timer = durationS === undefined ? undefined : setTimeout(stop, durationS * 1000)
    const out = this.context.stdout
    let stats: RttStats | undefined
    try {
      if (summaryS !== undefined && !this.json) out.write(SUMMARY_HEADER)
      for await (const b of capture) {
        if (summaryS === undefined) for (const s of b.samples) out.write(sampleLine(s, this.json))
        else for (const f of b.summaries) out.write(summaryLine(f, this.json))
        stats = b.stats
      }
    } finally {
      clearTimeout(timer)
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      capture.close()
    }
    if (stats) this.context.stderr.write(statsLine(stats))
    return 0
  }
}
