#!/usr/bin/env bash
# A short pass of every fuzz target (docs/RELIABILITY.md#fuzzing), for CI: builds fuzz/
# with the nightly toolchain and runs each target from its seed corpus and committed
# crashing inputs for a fixed number of executions (deterministic: -seed=1), each capped
# at FUZZ_SECONDS (default 4). A crash fails the script and leaves the input in
# fuzz/artifacts/<target>/; commit it under crates/<crate>/tests/fuzz_regressions/<target>/.
#
# Needs only `cargo +nightly`: the build passes cargo-fuzz's own instrumentation flags
# (cargo-fuzz 0.13, --sanitizer none), so CI does not have to install cargo-fuzz (a
# ~3-minute compile). Without nightly it says so and exits 0.
#
# Usage: scripts/fuzz-smoke.sh [target...]      (default: every target)
#   FUZZ_SECONDS=600 FUZZ_RUNS=-1 scripts/fuzz-smoke.sh netlink   a long run (-1: no run limit)
#   FUZZ_TOOLCHAIN=nightly-2026-11-01 ...                         another nightly
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(netlink tcp_info filter poller_config archive_read archive_zstd writer_config rtt_parse rtt_capture_file)
[ $# -gt 0 ] && targets=("$@")
secs=${FUZZ_SECONDS:-4}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
runs=${FUZZ_RUNS:-20000}

if ! cargo "+$toolchain" --version >/dev/null 2>&1; then
  echo "fuzz-smoke: SKIPPED: no $toolchain Rust toolchain ('rustup toolchain install $toolchain' enables it)"
  exit 0
fi
triple=$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')

start=$SECONDS
# The flags cargo-fuzz 0.13 passes for `cargo fuzz build --sanitizer none` (release, with
# debug assertions and overflow checks): coverage counters and comparison tracing.
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth"
flags+=" -Cdebug-assertions -Ccodegen-units=1"
RUSTFLAGS="$flags" cargo "+$toolchain" build --quiet --manifest-path fuzz/Cargo.toml --locked \
  --release --target "$triple" --config 'profile.release.debug="line-tables-only"' \
  $(printf -- '--bin %s ' "${targets[@]}")
echo "fuzz-smoke: built ${#targets[@]} targets in $((SECONDS - start)) s"

bin=fuzz/target/$triple/release
failed=()
for t in "${targets[@]}"; do
  corpus=$(mktemp -d)
  dirs=("$corpus")
  for d in fuzz/seeds/"$t" crates/*/tests/fuzz_regressions/"$t"; do
    [ -d "$d" ] && dirs+=("$d")
  done
  mkdir -p "fuzz/artifacts/$t"
  log=$(mktemp)
  if "$bin/$t" "${dirs[@]}" -seed=1 -runs="$runs" -max_total_time="$secs" -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
    echo "fuzz-smoke: $t ok: ${execs:-?} executions, ${cov:-no coverage line}"
  else
    failed+=("$t")
    echo "fuzz-smoke: $t FAILED:" >&2
    tail -n 40 "$log" >&2
  fi
  rm -rf "$corpus" "$log"
done
echo "fuzz-smoke: done in $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: crashing inputs in fuzz/artifacts/ for: ${failed[*]}" >&2
  exit 1
fi
