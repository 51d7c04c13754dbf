/**
 * The `decoded` value format of the Kafka sink: one flat JSON object per record, ready for
 * ClickHouse's Kafka engine (`JSONEachRow`): nested fields joined with `_`
 * (`tcpInfo.bytesAcked` → `tcpInfo_bytesAcked`, `id.srcIp` → `id_srcIp`), 64-bit counters
 * as decimal strings, and a `schema` version that changes only when a field changes meaning
 * or goes away (new fields may appear within a version).
 */
import type { Batch, Connection } from '../api/batch.js'
import { familyName } from '../uapi.js'

/** Version of the `decoded` Kafka value. */
export const KAFKA_DECODED_SCHEMA = 1

/** The flat object of one record. */
export function decodedRecord(c: Connection, batch: Batch): Record<string, unknown> {
  const out: Record<string, unknown> = {
    schema: KAFKA_DECODED_SCHEMA,
    kind: c.kind,
    seq: batch.seq,
    timestamp: batch.timestamp.toISOString(),
    uuid: c.uuid,
    cookie: c.cookie.toString(),
    family: familyName(c.family),
    fromDestroyEvent: c.fromDestroyEvent,
    unseen: c.unseen,
  }
  const d = c.decoded
  if (d) flatten(out, '', { ...d, id: { ...d.id, family: familyName(d.id.family) } })
  return out
}

function flatten(out: Record<string, unknown>, prefix: string, v: Record<string, unknown>): void {
  for (const [k, x] of Object.entries(v)) {
    const key = prefix ? `${prefix}_${k}` : k
    if (x === undefined || x === null) continue
    if (typeof x === 'bigint') out[key] = x.toString()
    else if (x instanceof Uint8Array) out[key] = Buffer.from(x).toString('base64')
    else if (Array.isArray(x)) out[key] = x.map((e) => (typeof e === 'bigint' ? e.toString() : e))
    else if (typeof x === 'object') flatten(out, key, x as Record<string, unknown>)
    else out[key] = x
  }
}
