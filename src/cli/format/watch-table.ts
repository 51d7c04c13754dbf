/**
 * The streaming table of `tcpinfo watch`: the header once (again after a screenful when
 * writing to a terminal), fixed column widths so rows of different polls line up, a time
 * column, one mark per kind of row, and on changed rows the names of the columns that
 * changed since the connection's previous row.
 */
import type { Batch, Connection } from '../../api/batch.js'
import { rowOf, TABLE_COLUMNS } from './table.js'

/**
 * Row marks: `=` listed by the first poll (already open), `+` opened, `~` changed,
 * `-` closed, `x` closed before any poll saw it.
 */
export const MARKS = { initial: '=', opened: '+', changed: '~', closed: '-', unseen: 'x' } as const

/** Widths of the columns after the mark and the time, in {@link TABLE_COLUMNS} order. */
const WIDTHS = [11, 6, 6, 27, 27, 8, 5, 12, 12, 6]
/** Short names of the columns for the "changed" list. */
const SHORT = ['state', 'recvq', 'sendq', 'local', 'peer', 'rtt', 'cwnd', 'acked', 'recv', 'cc']
const TIME_WIDTH = 12

function pad(cells: readonly string[]): string {
  return cells.map((c, i) => c.padEnd(WIDTHS[i] ?? 0)).join(' ')
}

function clock(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}

/** Writes the rows of successive batches. */
export class WatchTable {
  readonly #write: (s: string) => void
  readonly #repeatHeaderEvery: number
  /** The last row printed per connection, to say what changed (closed ones are forgotten). */
  readonly #last = new Map<string, string[]>()
  #rowsSinceHeader = -1

  /** @param repeatHeaderEvery rows after which the header is printed again; 0 = never. */
  constructor(write: (s: string) => void, repeatHeaderEvery = 0) {
    this.#write = write
    this.#repeatHeaderEvery = repeatHeaderEvery
  }

  /** Prints one batch's connections. */
  add(batch: Batch): void {
    const conns = batch.connections
    if (conns.length === 0) return
    const time = clock(batch.timestamp)
    let out = ''
    for (const c of conns) {
      if (this.#rowsSinceHeader < 0 || (this.#repeatHeaderEvery > 0 && this.#rowsSinceHeader >= this.#repeatHeaderEvery)) {
        out += `  ${'Time'.padEnd(TIME_WIDTH)} ${pad(TABLE_COLUMNS)} Changed\n`
        this.#rowsSinceHeader = 0
      }
      const cells = rowOf(c)
      out += `${this.#mark(c, batch)} ${time} ${pad(cells)}${this.#changed(c, cells)}`.trimEnd() + '\n'
      this.#rowsSinceHeader++
    }
    this.#write(out)
  }

  #mark(c: Connection, batch: Batch): string {
    if (c.kind === 'closed') return c.unseen ? MARKS.unseen : MARKS.closed
    if (c.kind === 'opened') return batch.seq === 1 ? MARKS.initial : MARKS.opened
    return MARKS.changed
  }

  #changed(c: Connection, cells: string[]): string {
    const key = c.uuid
    const prev = this.#last.get(key)
    if (c.kind === 'closed') {
      this.#last.delete(key)
      return ''
    }
    this.#last.set(key, cells)
    if (c.kind !== 'changed' || !prev) return ''
    const names = cells.flatMap((v, i) => (v !== prev[i] ? [SHORT[i] ?? ''] : []))
    return ` ${names.length > 0 ? names.join(',') : '(not shown)'}`
  }
}
