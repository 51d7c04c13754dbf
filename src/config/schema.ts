/**
 * A small declarative options schema: each option is a {@link Field} that checks a value
 * from the library API (`check`) and parses one from a flag or an environment variable
 * (`parse`), and {@link validateOptions} checks a whole options object once, synchronously,
 * throwing `ERR_CONFIG` with the option's public name and the bad value echoed. The
 * library's `watch()`/`snapshot()`, the CLI flags and the collector's config are front
 * ends of the same fields.
 *
 * Hand-written rather than a schema library: the errors must name the public option, echo
 * any JS value safely (NaN, symbols, cycles, prototype keys) and suggest the nearest
 * option, and the same field must parse flag text; that is about 200 lines here.
 */
import { TcpinfoError } from '../errors.js'

/** A problem with one value, before it is attached to the option's name. */
export class Invalid extends Error {}

/** One option. */
export interface Field<T> {
  /** What values are accepted, as the end of "X must be …" (`an integer from 1 to 1024`). */
  readonly expects: string
  /** Checks a value given to the library; throws {@link Invalid} (or `TcpinfoError`). */
  check(value: unknown, name: string): T
  /** Parses the text of a flag or environment variable; throws {@link Invalid}. */
  parse(text: string, name: string): T
  /** One-line documentation, with the unit and the default. */
  readonly doc: string
}

/** A schema: one field per option name. */
export type Schema<T> = { readonly [K in keyof T]-?: Field<NonNullable<T[K]>> }

/** A short, safe rendering of any JS value for an error message. */
export function echo(value: unknown): string {
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value)
    case 'bigint':
      return `${value}n`
    case 'string':
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)
    case 'undefined':
      return 'undefined'
    case 'symbol':
      return value.toString()
    case 'function':
      return 'a function'
    case 'boolean':
      return String(value)
    default: {
      if (value === null) return 'null'
      try {
        const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))
        if (text === undefined) return Object.prototype.toString.call(value)
        return text.length > 60 ? `${text.slice(0, 57)}...` : text
      } catch {
        return Object.prototype.toString.call(value)
      }
    }
  }
}

/** The `ERR_CONFIG` error for option `name`. */
export function configError(name: string, expects: string, value: unknown, hint = ''): TcpinfoError {
  return new TcpinfoError('ERR_CONFIG', `${name} must be ${expects}, got ${echo(value)}${hint}`)
}

function fail(field: { expects: string }, name: string, value: unknown, e?: unknown): never {
  if (e instanceof TcpinfoError) throw e
  const hint = e instanceof Invalid && e.message ? ` (${e.message})` : ''
  throw configError(name, field.expects, value, hint)
}

/** Checks one value with `field`, turning any problem into `ERR_CONFIG` naming `name`. */
export function checkField<T>(field: Field<T>, value: unknown, name: string): T {
  try {
    return field.check(value, name)
  } catch (e) {
    return fail(field, name, value, e)
  }
}

/** Parses flag or env text with `field`, turning any problem into `ERR_CONFIG` naming `name`. */
export function parseField<T>(field: Field<T>, text: string, name: string): T {
  try {
    return field.parse(text, name)
  } catch (e) {
    return fail(field, name, text, e)
  }
}

/** An integer in `[min, max]`. */
export function integer(min: number, max: number, doc: string): Field<number> {
  const expects = `an integer from ${min} to ${max}`
  const check = (v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Invalid()
    return v
  }
  return { expects, doc, check, parse: (t) => check(/^\s*[+-]?(\d+|0x[0-9a-f]+)\s*$/i.test(t) ? Number(t) : Number.NaN) }
}

/** A finite number in `[min, max]`. */
export function number(min: number, max: number, doc: string): Field<number> {
  const expects = `a number from ${min} to ${max}`
  const check = (v: unknown): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new Invalid()
    return v
  }
  return { expects, doc, check, parse: (t) => check(t.trim() === '' ? Number.NaN : Number(t)) }
}

/** `true` or `false` (flag and env text: true/false/1/0/yes/no/on/off). */
export function boolean(doc: string): Field<boolean> {
  const words: Record<string, boolean> = { true: true, false: false, '1': true, '0': false, yes: true, no: false, on: true, off: false }
  return {
    expects: 'true or false',
    doc,
    check: (v) => {
      if (typeof v !== 'boolean') throw new Invalid()
      return v
    },
    parse: (t) => {
      const b = words[t.trim().toLowerCase()]
      if (b === undefined) throw new Invalid()
      return b
    },
  }
}

/** A string of 1 to `maxLength` characters without NUL, optionally also matching `ok`. */
export function text(doc: string, maxLength = 4096, ok?: { test(s: string): boolean; expects: string }): Field<string> {
  const expects = ok?.expects ?? `a non-empty string of at most ${maxLength} characters`
  const check = (v: unknown): string => {
    if (typeof v !== 'string' || v.length === 0 || v.length > maxLength || v.includes('\0') || (ok && !ok.test(v))) throw new Invalid()
    return v
  }
  return { expects, doc, check, parse: check }
}

/** One of `values`. */
export function oneOf<const V extends string>(values: readonly V[], doc: string): Field<V> {
  const check = (v: unknown): V => {
    if (typeof v !== 'string' || !values.includes(v as V)) throw new Invalid()
    return v as V
  }
  return { expects: `one of ${values.join(', ')}`, doc, check, parse: (t) => check(t.trim()) }
}

/**
 * A list of `item`s, at most `maxItems` long. From flag or env text, a comma-separated
 * list (`22,80`); the CLI also joins repeated flags.
 */
export function list<T>(item: Field<T>, maxItems: number, doc: string, minItems = 0): Field<T[]> {
  const count = minItems > 0 ? `${minItems} to ${maxItems}` : `at most ${maxItems}`
  const expects = `a list of ${count} items, each ${item.expects}`
  return {
    expects,
    doc,
    check: (v, name) => {
      if (!Array.isArray(v) || v.length > maxItems || v.length < minItems) throw new Invalid()
      return v.map((x: unknown, i) => checkField(item, x, `${name}[${i}]`))
    },
    parse: (t, name) => {
      const parts = t.split(',').map((s) => s.trim()).filter((s) => s !== '')
      if (parts.length > maxItems || parts.length < minItems) throw new Invalid()
      return parts.map((p) => parseField(item, p, name))
    },
  }
}

/** An `AbortSignal` (library only). */
export function signal(doc: string): Field<AbortSignal> {
  return {
    expects: 'an AbortSignal',
    doc,
    check: (v) => {
      if (!(v instanceof AbortSignal)) throw new Invalid()
      return v
    },
    parse: () => {
      throw new Invalid('not settable from text')
    },
  }
}

/** A nested options object checked by `schema` (`change: { stateOnly: true }`). */
export function nested<T extends object>(schema: Schema<T>, doc: string): Field<T> {
  return {
    expects: 'an object',
    doc,
    check: (v, name) => validateOptions(schema, v, name),
    parse: () => {
      throw new Invalid('not settable from text')
    },
  }
}

/**
 * Checks `input` against `schema`: every key must be an option of the schema (else
 * `ERR_CONFIG` with a did-you-mean), every value its field's type; `undefined` values
 * count as absent. Returns a new object holding only the checked values.
 *
 * @param what the options' name in messages (`watch() options`, `change`).
 * @param aliases other spellings users try, mapped to the option they meant.
 * @throws {TcpinfoError} `ERR_CONFIG`, synchronously.
 */
export function validateOptions<T extends object>(
  schema: Schema<T>,
  input: unknown,
  what: string,
  aliases: Readonly<Record<string, string>> = {},
): T {
  if (input === undefined) return {} as T
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new TcpinfoError('ERR_CONFIG', `${what} must be an object, got ${echo(input)}`)
  }
  const out: Record<string, unknown> = {}
  const prefix = what.endsWith('options') ? '' : `${what}.`
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(schema, key)) {
      const near = suggest(key, Object.keys(schema), aliases)
      throw new TcpinfoError('ERR_CONFIG', `unknown option ${prefix}${key} in ${what}${near ? ` (did you mean ${prefix}${near}?)` : ''}`)
    }
    const value = (input as Record<string, unknown>)[key]
    if (value === undefined) continue
    out[key] = checkField((schema as Record<string, Field<unknown>>)[key] as Field<unknown>, value, `${prefix}${key}`)
  }
  return out as T
}

/** The option `key` most likely meant: an alias, a case or separator slip, or an edit-distance neighbour. */
export function suggest(key: string, names: readonly string[], aliases: Readonly<Record<string, string>> = {}): string | undefined {
  const alias = Object.hasOwn(aliases, key) ? aliases[key] : undefined
  if (alias) return alias
  const norm = (s: string): string => s.toLowerCase().replace(/[-_.]/g, '')
  const exact = names.find((n) => norm(n) === norm(key))
  if (exact) return exact
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1
  for (const n of names) {
    const d = distance(norm(key), norm(n))
    if (d < bestDistance) [best, bestDistance] = [n, d]
  }
  return best ?? names.find((n) => norm(n).startsWith(norm(key)) && key.length >= 3)
}

/** Levenshtein distance (short strings only). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}
