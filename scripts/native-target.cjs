/**
 * The napi-rs platform suffix of this machine (`linux-x64-gnu`, `linux-arm64-gnu`,
 * `linux-x64-musl`, …): the name of the prebuilt package `tcpinfo-<suffix>` and of the
 * file `tcpinfo.<suffix>.node`.
 */
'use strict'

function isMusl() {
  try {
    return !process.report.getReport().header.glibcVersionRuntime
  } catch {
    return false
  }
}

function platformSuffix() {
  const abi = process.platform === 'linux' ? (isMusl() ? '-musl' : '-gnu') : ''
  return `${process.platform}-${process.arch}${abi}`
}

module.exports = { platformSuffix }
