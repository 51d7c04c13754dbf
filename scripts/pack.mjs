#!/usr/bin/env node
/**
 * Packs what a release publishes, as `napi prepublish` would, into OUT_DIR:
 * - one `tcpinfo-<platform>` tarball per prebuilt `native/tcpinfo.<platform>.node` (or
 *   per artifact in `--artifacts DIR`), from the matching `npm/<platform>/` package;
 * - the main `tcpinfo` tarball with `optionalDependencies` on every platform package
 *   of `napi.targets`, at the same version.
 * Used by the release workflow and by scripts/test-user-install.sh.
 *
 * Usage: node scripts/pack.mjs OUT_DIR [--artifacts DIR] [--no-platform]
 */
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(new URL('..', import.meta.url).pathname)
const args = process.argv.slice(2)
const out = resolve(args[0] ?? 'dist-pack')
const artifacts = args.includes('--artifacts') ? resolve(args[args.indexOf('--artifacts') + 1]) : join(root, 'native')
const withPlatform = !args.includes('--no-platform')
mkdirSync(out, { recursive: true })

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const npmPack = (dir) => execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', out], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop()

const platforms = readdirSync(join(root, 'npm'))
const packed = []
if (withPlatform) {
  for (const platform of platforms) {
    const node = join(artifacts, `tcpinfo.${platform}.node`)
    if (!existsSync(node)) continue
    const stage = mkdtempSync(join(tmpdir(), `tcpinfo-${platform}-`))
    cpSync(join(root, 'npm', platform), stage, { recursive: true })
    cpSync(node, join(stage, `tcpinfo.${platform}.node`))
    const p = JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8'))
    p.version = pkg.version
    writeFileSync(join(stage, 'package.json'), `${JSON.stringify(p, null, 2)}\n`)
    packed.push(npmPack(stage))
  }
}

const stage = mkdtempSync(join(tmpdir(), 'tcpinfo-main-'))
execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', stage], { cwd: root, stdio: 'ignore' })
const tgz = readdirSync(stage).find((f) => f.endsWith('.tgz'))
execFileSync('tar', ['xzf', join(stage, tgz), '-C', stage])
const mainDir = join(stage, 'package')
const main = JSON.parse(readFileSync(join(mainDir, 'package.json'), 'utf8'))
main.optionalDependencies = Object.fromEntries(platforms.map((p) => [`tcpinfo-${p}`, pkg.version]))
writeFileSync(join(mainDir, 'package.json'), `${JSON.stringify(main, null, 2)}\n`)
packed.push(npmPack(mainDir))
process.stdout.write(`${packed.map((f) => join(out, f)).join('\n')}\n`)
