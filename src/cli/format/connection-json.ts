/**
 * The JSON object printed for one connection by `--json` (docs/json-output.md). The
 * shape is versioned: `schema` changes only when a field changes meaning or goes away;
 * new fields may appear within a version.
 */
import type { Batch, Connection } from '../../api/batch.js'
import { familyName } from '../../uapi.js'

/** Version of the `--json` object shape. */
export const JSON_SCHEMA_VERSION = 1

/** Flat JSON view: event metadata first, then everything decoded; families as names. */
export function connectionJson(c: Connection, batch: Batch): Record<string, unknown> {
  const d = c.decoded
  return {
    schema: JSON_SCHEMA_VERSION,
    kind: c.kind,
    seq: batch.seq,
    timestamp: batch.timestamp.toISOString(),
    uuid: c.uuid,
    cookie: c.cookie,
    family: familyName(c.family),
    ...(c.fromDestroyEvent ? { fromDestroyEvent: true } : {}),
    ...(c.unseen ? { unseen: true } : {}),
    ...(c.netns && !c.netns.host ? { netns: { inode: c.netns.inode, name: c.netns.name } } : {}),
    ...(d ? { ...d, id: { ...d.id, family: familyName(d.id.family) } } : {}),
  }
}
