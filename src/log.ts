/**
 * One line per event: `2026-11-29T12:00:00.000Z info archive: opened 3 files` by
 * default, or one JSON object per line (`--log-format json`) for machines. Repeated
 * events of one key are rate-limited: the next line after the quiet period says how many
 * were held back. Components get a {@link Logger} through their constructor.
 */

/** Log levels, lowest first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** What a component logs through. */
export interface Logger {
  log(level: LogLevel, component: string, message: string, fields?: Record<string, unknown>): void
  /** Like {@link log}, at most once per `everyMs` for `key`; later lines count the held-back ones. */
  limited(key: string, everyMs: number, level: LogLevel, component: string, message: string, fields?: Record<string, unknown>): void
}

/** A logger writing lines to `write` (stderr in the CLI). */
export function createLogger(write: (line: string) => void, options: { format?: 'text' | 'json'; level?: LogLevel; now?: () => Date } = {}): Logger {
  const min = LOG_LEVELS.indexOf(options.level ?? 'info')
  const now = options.now ?? (() => new Date())
  const json = options.format === 'json'
  const held = new Map<string, { until: number; suppressed: number }>()
  const log: Logger['log'] = (level, component, message, fields = {}) => {
    if (LOG_LEVELS.indexOf(level) < min) return
    const time = now().toISOString()
    if (json) {
      write(`${JSON.stringify({ time, level, component, msg: message, ...fields }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`)
    } else {
      const extra = Object.entries(fields)
        .map(([k, v]) => ` ${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`)
        .join('')
      write(`${time} ${level.padEnd(5)} ${component}: ${message}${extra}\n`)
    }
  }
  return {
    log,
    limited(key, everyMs, level, component, message, fields = {}) {
      const t = now().getTime()
      const h = held.get(key)
      if (h && t < h.until) {
        h.suppressed++
        return
      }
      const suppressed = h?.suppressed ?? 0
      held.set(key, { until: t + everyMs, suppressed: 0 })
      if (held.size > 10_000) held.clear()
      log(level, component, message, suppressed > 0 ? { ...fields, suppressed } : fields)
    },
  }
}
