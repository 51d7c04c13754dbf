#!/usr/bin/env node
/**
 * `install` script of the published package. With a matching prebuilt package
 * (`tcpinfo-<platform>`, an optional dependency) there is nothing to do. Without one, it
 * builds the addon from the Rust sources shipped in the package, if cargo is on PATH, and
 * otherwise says exactly what is missing. It never fails the install of a dependent
 * project: on an unsupported platform the package still imports and its polling calls
 * throw `ERR_UNSUPPORTED_PLATFORM` / `ERR_NATIVE_MISSING` with the same explanation.
 * In a git checkout it does nothing: `prepare` builds there.
 */
'use strict'
const { copyFileSync, existsSync, mkdirSync } = require('node:fs')
const { join } = require('node:path')
const { spawnSync } = require('node:child_process')
const { platformSuffix } = require('./native-target.cjs')

const root = join(__dirname, '..')
const suffix = platformSuffix()
const say = (msg) => process.stderr.write(`tcpinfo: ${msg}\n`)

function main() {
  if (process.platform !== 'linux') {
    say(`${suffix} has no netlink inet_diag: the package installs, but watch() and snapshot() throw ERR_UNSUPPORTED_PLATFORM (Linux only)`)
    return 0
  }
  if (existsSync(join(root, '.git'))) return 0
  try {
    require(join(root, 'native', 'binding.cjs'))
    return 0
  } catch {
    // No prebuilt binary for this platform: fall through to the source build.
  }
  if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status !== 0) {
    say(`no prebuilt binary for ${suffix} and no Rust toolchain on PATH. Install Rust (https://rustup.rs) and run 'npm rebuild tcpinfo' to build it from source.`)
    return 0
  }
  say(`no prebuilt binary for ${suffix}: building the native addon from source with cargo (release, ~1-2 minutes)…`)
  const build = spawnSync('cargo', ['build', '--release', '--locked', '-p', 'tcpinfo-node'], { cwd: root, stdio: 'inherit' })
  if (build.status !== 0) {
    say('building from source failed (see the cargo output above); watch() and snapshot() will throw ERR_NATIVE_MISSING')
    return 1
  }
  const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, 'target')
  mkdirSync(join(root, 'native'), { recursive: true })
  copyFileSync(join(targetDir, 'release', 'libtcpinfo_node.so'), join(root, 'native', `tcpinfo.${suffix}.node`))
  say(`built native/tcpinfo.${suffix}.node from source`)
  return 0
}

process.exitCode = main()
