/**
 * The published typings type-check in a consumer project with `skipLibCheck: false`
 * (issue 8): `dist/**.d.ts` and the generated `native/binding.d.cts` reference only
 * declared types. The consumer gets the package through node_modules/tcpinfo, a link to
 * this checkout (what `npm install` of the tarball gives, minus the copy).
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

test('a consumer project compiles against dist/ and native/ with skipLibCheck false', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpinfo-consumer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(ROOT, '__test__/fixtures/consumer'), dir, { recursive: true })
  mkdirSync(join(dir, 'node_modules/@types'), { recursive: true })
  symlinkSync(ROOT, join(dir, 'node_modules/tcpinfo'))
  symlinkSync(join(ROOT, 'node_modules/@types/node'), join(dir, 'node_modules/@types/node'))
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8', stdio: 'pipe' })
    t.pass()
  } catch (e) {
    t.fail(`tsc failed:\n${(e as { stdout?: string }).stdout ?? String(e)}`)
  }
})
