#!/usr/bin/env bash
# The user's path, end to end: pack the platform package and the main package as a
# release would (scripts/pack.mjs), install both tarballs into a fresh project on a PATH
# without any Rust toolchain, then run `npx tcpinfo snapshot` and a script that reads two
# polls from watch(). Then the fallback: the main package alone (no prebuilt binary for
# this platform) still imports, and polling fails with ERR_NATIVE_MISSING naming the
# platform and the way to build from source; then `npm rebuild tcpinfo` builds it from the
# Rust sources in the package and polling works.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/tcpinfo-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
say() { printf 'test-user-install: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }

[ -f "$root/native/tcpinfo.linux-x64-gnu.node" ] || fail "build the addon first (npm run build)"
[ -f "$root/dist/index.js" ] || fail "build the TypeScript first (npm run build:ts)"

mapfile -t tarballs < <(node "$root/scripts/pack.mjs" "$work/pack")
say "packed: ${tarballs[*]##*/}"
[ "${#tarballs[@]}" -eq 2 ] || fail "expected a platform tarball and the main tarball"

# A PATH with node and npm but no cargo/rustc.
nopath=/usr/local/bin:/usr/bin:/bin
nodedir=$(dirname "$(command -v node)")
case ":$nopath:" in *":$nodedir:"*) ;; *) nopath="$nodedir:$nopath" ;; esac
if PATH=$nopath command -v cargo >/dev/null; then fail "cargo is still on the restricted PATH"; fi

passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); say "FAILED: $*"; fi; }

# 1. Prebuilt path.
app="$work/app"; mkdir -p "$app"
(cd "$app" && PATH=$nopath npm init -y >/dev/null && PATH=$nopath npm install --no-audit --no-fund "${tarballs[@]}" >/dev/null 2>"$work/npm.log") || { cat "$work/npm.log"; fail "npm install of the tarballs"; }
check test ! -e "$app/node_modules/tcpinfo/native/tcpinfo.linux-x64-gnu.node"
check test -f "$app/node_modules/tcpinfo-linux-x64-gnu/tcpinfo.linux-x64-gnu.node"
out=$(cd "$app" && PATH=$nopath npx --no-install tcpinfo snapshot)
check grep -q '^State  *Recv-Q  *Send-Q' <<<"$out"
cat > "$app/two-polls.mjs" <<'JS'
import { watch } from 'tcpinfo'
let polls = 0
for await (const batch of watch({ intervalMs: 20 })) {
  if (batch.seq !== ++polls) throw new Error(`poll ${polls} has seq ${batch.seq}`)
  if (polls === 2) break
}
console.log(`polls=${polls}`)
JS
check grep -qx 'polls=2' <<<"$(cd "$app" && PATH=$nopath node two-polls.mjs)"

# 2. No prebuilt binary for this platform: import works, polling explains.
bare="$work/bare"; mkdir -p "$bare"
(cd "$bare" && PATH=$nopath npm init -y >/dev/null && PATH=$nopath npm install --no-audit --no-fund --omit=optional "${tarballs[1]}" >/dev/null 2>&1) || fail "npm install of the main tarball alone"
cat > "$bare/probe.mjs" <<'JS'
import { snapshot, TCP_STATES } from 'tcpinfo'
if (TCP_STATES.listening !== 10) throw new Error('pure-JS exports broken')
try {
  const batch = await snapshot()
  console.log(`ok ${batch.socketsSeen} sockets`) // only once the addon exists
} catch (e) {
  console.log(`${e.code} ${e.message}`)
}
JS
probe=$(cd "$bare" && PATH=$nopath node probe.mjs)
say "without a prebuilt binary: $probe"
check grep -q '^ERR_NATIVE_MISSING .*linux-x64-gnu.*tcpinfo-linux-x64-gnu' <<<"$probe"
check grep -q 'npm rebuild tcpinfo' <<<"$probe"

# 3. The same project builds the addon from the shipped Rust sources when asked, if cargo
#    is on PATH (the path of a platform without a prebuilt package). The shared target
#    directory keeps it to the two tcpinfo crates.
if command -v cargo >/dev/null; then
  (cd "$bare" && CARGO_TARGET_DIR="$root/target" npm rebuild tcpinfo >"$work/rebuild.log" 2>&1) || { tail -20 "$work/rebuild.log"; fail "npm rebuild tcpinfo"; }
  check test -f "$bare/node_modules/tcpinfo/native/tcpinfo.linux-x64-gnu.node"
  built=$(cd "$bare" && PATH=$nopath node probe.mjs)
  say "after building from source: $built"
  check grep -q '^ok [0-9]* sockets' <<<"$built"
else
  say "cargo not on PATH: skipping the source build"
fi

say "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
