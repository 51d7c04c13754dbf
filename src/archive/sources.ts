/**
 * What `readArchive()` reads: paths, directories (searched recursively, in time order),
 * globs, and readable streams, resolved into an ordered list of named sources.
 */
import { createReadStream, type Stats } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import type { Readable } from 'node:stream'

/** One input of {@link readArchive}: a path (file, directory or glob), `'-'` for stdin, or a stream. */
export type ArchiveInput = string | NodeJS.ReadableStream | Readable

/** A resolved source: its name (for errors) and how to open it. */
export interface ArchiveSource {
  name: string
  /** Stored size in bytes, when known (for progress). */
  size?: number
  open(): NodeJS.ReadableStream
}

/** File names a directory walk picks up. */
const ARCHIVE_NAME = /\.(jsonl|jsonl\.zst|zst)$/
/** Read size per chunk: 1 MiB. */
const CHUNK_BYTES = 1 << 20

function fileSource(path: string, st?: Stats): ArchiveSource {
  return { name: path, ...(st ? { size: st.size } : {}), open: () => createReadStream(path, { highWaterMark: CHUNK_BYTES }) }
}

/** Sort key for time order: the date in an M-Lab path (`…/YYYY/MM/DD/…`), else the mtime. */
function timeKey(path: string, st: Stats): number {
  const m = /(?:^|\/)(\d{4})\/(\d{2})\/(\d{2})\//.exec(path)
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : st.mtimeMs
}

async function walk(dir: string, out: { path: string; st: Stats }[], filter: (p: string) => boolean): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true })
  for (const e of entries) {
    const p = join(dir, e.name)
    if (e.isDirectory()) await walk(p, out, filter)
    else if (e.isFile() && filter(p)) out.push({ path: p, st: await stat(p) })
  }
}

/** Files under `dir` in time order: by date directory (or mtime), then name (UUID, then sequence). */
async function directory(dir: string, filter: (p: string) => boolean): Promise<ArchiveSource[]> {
  const found: { path: string; st: Stats }[] = []
  await walk(dir, found, filter)
  const keyed = found.map((f) => ({ ...f, key: timeKey(f.path, f.st), base: f.path.split(sep).pop() ?? '' }))
  keyed.sort((a, b) => a.key - b.key || (a.base < b.base ? -1 : a.base > b.base ? 1 : a.path < b.path ? -1 : 1))
  return keyed.map((f) => fileSource(f.path, f.st))
}

const GLOB_CHARS = /[*?[]/

/** A glob (`*`, `?`, `[...]` within a path segment, `**` across segments) as a RegExp. */
function globRegExp(glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*'
      i++
      if (glob[i + 1] === '/') i++
    } else if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const end = glob.indexOf(']', i)
      if (end < 0) re += '\\['
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, '^')}]`
        i = end
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/**
 * Resolves inputs into sources, in order: each path as given; a directory's archive files
 * (`*.jsonl`, `*.jsonl.zst`, `*.zst`) recursively in time order; a glob's matches in time
 * order; `'-'` as standard input; a stream as `stream`.
 * @throws Node's `ENOENT`/`EACCES` errors for paths that cannot be read.
 */
export async function resolveSources(inputs: ArchiveInput | readonly ArchiveInput[]): Promise<ArchiveSource[]> {
  const list = Array.isArray(inputs) ? (inputs as readonly ArchiveInput[]) : [inputs as ArchiveInput]
  const out: ArchiveSource[] = []
  let streams = 0
  for (const input of list) {
    if (typeof input !== 'string') {
      const name = streams++ === 0 ? 'stream' : `stream ${streams}`
      out.push({ name, open: () => input })
    } else if (input === '-') {
      out.push({ name: '-', open: () => process.stdin })
    } else if (GLOB_CHARS.test(input)) {
      const parts = input.split('/')
      const first = parts.findIndex((p) => GLOB_CHARS.test(p))
      const base = parts.slice(0, first).join('/') || (input.startsWith('/') ? '/' : '.')
      const re = globRegExp(resolve(input))
      for (const f of await directory(base, (p) => re.test(resolve(p)))) out.push(f)
    } else {
      const st = await stat(input)
      // One at a time: a directory can hold more files than a spread has arguments (a
      // 10-minute soak at 500 connections/s writes 300,000; a spread overflows the stack at ~125k).
      for (const f of st.isDirectory() ? await directory(input, (p) => ARCHIVE_NAME.test(p)) : [fileSource(input, st)]) out.push(f)
    }
  }
  return out
}
