/** JSON output: `bigint` as decimal strings (JSON has no 64-bit integers), Buffers as base64. */

/** `JSON.stringify` replacer for tcpinfo objects. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer') {
    return Buffer.from((value as { data: number[] }).data).toString('base64')
  }
  return value
}

/** One JSON line. */
export function toJsonLine(value: unknown): string {
  return `${JSON.stringify(value, jsonReplacer)}\n`
}
