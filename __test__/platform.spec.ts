/**
 * On a non-Linux host the package still imports; what needs netlink fails with a clear
 * ERR_UNSUPPORTED_PLATFORM naming the platform, and the rest (constants, types, errors)
 * keeps working. The host is simulated by overriding `process.platform` before import.
 */
import { execFileSync } from 'node:child_process'

import test from 'ava'

const probe = `
Object.defineProperty(process, 'platform', { value: 'darwin' })
const m = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)})
const out = { listen: m.TCP_STATES.listening }
try { await m.snapshot() } catch (e) { out.snapshot = [e.code, e.message] }
try { await m.watch().next() } catch (e) { out.watch = [e.code, e.message] }
console.log(JSON.stringify(out))
`

test('importing works on a non-Linux host and polling fails with ERR_UNSUPPORTED_PLATFORM', (t) => {
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' })) as {
    listen: number
    snapshot: [string, string]
    watch: [string, string]
  }
  t.is(out.listen, 10)
  for (const [code, message] of [out.snapshot, out.watch]) {
    t.is(code, 'ERR_UNSUPPORTED_PLATFORM')
    t.regex(message, new RegExp(`darwin-${process.arch}`))
  }
})
