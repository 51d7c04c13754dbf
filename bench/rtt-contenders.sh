#!/usr/bin/env bash
# Passive RTT (issue 14): tcpinfo's cost per packet against tcpdump's and tshark's on the
# same capture, and the live ring at 200k packets/s. Results: docs/BENCHMARKS.md,
# "Passive RTT". Needs root (the ring), tcpdump and tshark; builds the bench binary.
#   bash bench/rtt-contenders.sh [packets=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-1000000}
cargo build --release -q -p tcpinfo-bench --bin rtt
[ -f dist/cli/main.js ] || npm run build:ts >/dev/null
bin=target/release/rtt
pcap=$(mktemp --suffix=.pcap)
trap 'rm -f "$pcap" "$pcap.200k"' EXIT

echo "# parse + match in memory (best of 3), and the trace written to $pcap"
$bin parse --packets "$packets" --flows 1000 --write "$pcap"

# user and system CPU seconds of a command (its output discarded)
cpu() { /usr/bin/time -f '%U %S' "$@" 2>&1 >/dev/null | tail -1; }
row() { # name, packets, command...
  local name=$1 n=$2; shift 2
  read -r u s < <(cpu "$@")
  awk -v name="$name" -v u="$u" -v s="$s" -v n="$n" 'BEGIN { printf "%-44s user %6.2f s  sys %5.2f s  %8.0f ns/packet (user)\n", name, u, s, u * 1e9 / n }'
}
echo "# the same file read by each tool"
row "tcpinfo rtt --pcap --summary 3600 (node)" "$packets" node dist/cli/main.js rtt --pcap "$pcap" --summary 3600
row "tcpdump -r -w /dev/null (copy, no decode)" "$packets" tcpdump -r "$pcap" -w /dev/null
row "tcpdump -nn -r (decode, print)" "$packets" tcpdump -nn -r "$pcap"
editcap -r "$pcap" "$pcap.200k" 1-200000 >/dev/null
row "tshark -T fields tsval,tsecr (first 200k)" 200000 tshark -r "$pcap.200k" -T fields -e tcp.options.timestamp.tsval -e tcp.options.timestamp.tsecr

echo "# live: 200k packets/s for 3 s through a veth, default ring (8 x 1 MiB); a real-time sender"
$bin ring --pps 200000 --seconds 3 --rt-sender true
echo "# ... and 300k packets/s"
$bin ring --pps 300000 --seconds 3 --rt-sender true
echo "# the collector's Monitor at 200k packets/s, a reader every 10 ms (lookups + histograms)"
$bin monitor --pps 200000 --seconds 3
