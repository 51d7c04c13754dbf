/**
 * Architecture checks (STYLE practices 3 and 5): dependencies point down only
 * (cli → collector → outputs → api → config → native → vocabulary), and only src/native.ts
 * loads the generated binding.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

import test from 'ava'

const SRC = new URL('../src/', import.meta.url).pathname

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
}

const LAYER_ORDER = ['uapi', 'errors', 'log', 'native', 'config', 'api', 'archive', 'rtt', 'sinks', 'eventsocket', 'passive-rtt', 'metrics', 'report', 'collector', 'cli'] as const

function layerOf(file: string): number {
  const top = relative(SRC, file).split('/')[0] ?? ''
  const name = top.replace(/\.ts$/, '')
  const i = LAYER_ORDER.indexOf(name as (typeof LAYER_ORDER)[number])
  return i === -1 ? LAYER_ORDER.length : i
}

test('imports never point to a higher layer', (t) => {
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8')
    for (const m of text.matchAll(/from '(\.[^']+)'/g)) {
      const target = join(f, '..', m[1] as string).replace(/\.js$/, '.ts')
      if (!target.startsWith(SRC)) continue
      if (relative(SRC, f) === 'index.ts') continue
      t.true(layerOf(target) <= layerOf(f), `${relative(SRC, f)} imports ${relative(SRC, target)}`)
    }
  }
})

test('only src/native.ts imports the generated binding', (t) => {
  const loaders = files(SRC).filter((f) => /binding\.(cjs|js)/.test(readFileSync(f, 'utf8')))
  t.deepEqual(loaders.map((f) => relative(SRC, f)), ['native.ts'])
})

test('the npm package ships every Rust workspace member (npm rebuild from source needs them all)', (t) => {
  const root = new URL('../', import.meta.url).pathname
  const members = /members\s*=\s*\[([^\]]*)\]/.exec(readFileSync(join(root, 'Cargo.toml'), 'utf8'))?.[1] ?? ''
  const shipped = new Set<string>(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).files)
  const dirs = [...members.matchAll(/"([^"]+)"/g)].map((m) => m[1] as string)
  t.true(dirs.length >= 8, members)
  for (const dir of dirs) {
    for (const part of ['Cargo.toml', 'src', 'build.rs']) {
      const path = `${dir}/${part}`
      if (part === 'build.rs' && !readdirSync(join(root, dir)).includes('build.rs')) continue
      t.true(shipped.has(path), `package.json "files" lacks ${path}`)
    }
  }
})
