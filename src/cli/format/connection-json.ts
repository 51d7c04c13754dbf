/** The JSON object printed for one connection by `--json`. */
import type { Batch, Connection } from '../../api/batch.js'

/** Flat JSON view: event metadata first, then everything decoded. */
export function connectionJson(c: Connection, batch: Batch): Record<string, unknown> {
  return {
    kind: c.kind,
    seq: batch.seq,
    timestamp: batch.timestamp.toISOString(),
    uuid: c.uuid,
    cookie: c.cookie,
    ...(c.fromDestroyEvent ? { fromDestroyEvent: true } : {}),
    ...(c.unseen ? { unseen: true } : {}),
    ...(c.decoded ?? { family: c.family }),
  }
}
