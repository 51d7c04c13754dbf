/** A one-line progress display on stderr for long reads (files, records, bytes, rate, ETA). */
import type { ArchiveReader } from '../../archive/read-archive.js'

/** Redraws at most this often, ms. */
const REDRAW_MS = 200

function human(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n))
}

/** A progress line; a no-op unless `stream` is a terminal. */
export class Progress {
  readonly #stream: NodeJS.WritableStream & { isTTY?: boolean }
  readonly #start = Date.now()
  #last = 0
  #shown = false

  constructor(stream: NodeJS.WritableStream & { isTTY?: boolean }) {
    this.#stream = stream
  }

  update(r: ArchiveReader, force = false): void {
    if (!this.#stream.isTTY) return
    const now = Date.now()
    if (!force && now - this.#last < REDRAW_MS) return
    this.#last = now
    const s = r.stats
    const secs = Math.max((now - this.#start) / 1000, 1e-3)
    const rate = s.records / secs
    const frac = s.bytesTotal > 0 ? Math.min(s.bytesIn / s.bytesTotal, 1) : 0
    const eta = frac > 0 && frac < 1 ? ` ETA ${Math.ceil((secs / frac) * (1 - frac))}s` : ''
    const bytes = s.bytesTotal > 0 ? `${human(s.bytesIn)}B/${human(s.bytesTotal)}B` : `${human(s.bytesIn)}B`
    this.#stream.write(`\r\x1b[Kfiles ${s.files}/${s.filesTotal} records ${human(s.records)} ${bytes} ${human(rate)} rec/s${eta}${s.errors ? ` errors ${s.errors}` : ''}`)
    this.#shown = true
  }

  done(r: ArchiveReader): void {
    if (!this.#stream.isTTY) return
    this.update(r, true)
    if (this.#shown) this.#stream.write('\n')
  }
}
