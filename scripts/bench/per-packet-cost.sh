#!/usr/bin/env bash
# Revocation by per-packet matching: what does judging EVERY packet to a published port cost?
# Uploads 1 GiB five times from a netns client (198.51.100.10) through a published port to a sink
# container, first with no dockwarden table (the floor, same run), then under a running daemon whose
# policy allows the client. Prints MB/s medians and the ratio with/without (1.0 = no cost).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "per-packet-cost: run as root" >&2; exit 2; }
if ip -4 route show | grep -q '198\.51\.100\.'; then echo "per-packet-cost: 198.51.100.0/24 is already routed; refusing" >&2; exit 2; fi
bash scripts/test-env.sh up >/dev/null
eval "$(bash scripts/test-env.sh env)"
D=(docker -H "$DW_TEST_DOCKER_HOST")
NS=dwbpp$$ HOSTV=dwbpph$$ WORK=$(mktemp -d)
export DOCKWARDEN_DOCKER_SOCKET=${DW_TEST_DOCKER_HOST#unix://} DOCKWARDEN_STATE_DIR=$WORK/state DOCKWARDEN_FIREWALL_BACKEND=nftables DOCKWARDEN_POLICY=$WORK/policy.yaml
cleanup() {
  [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
  "${D[@]}" rm -f dw-bench-pp >/dev/null 2>&1 || true
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$HOSTV" 2>/dev/null || true
  node dist/cli/main.js firewall remove >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"; ip link add "$HOSTV" type veth peer name eth0 netns "$NS"
ip addr add 198.51.100.1/24 dev "$HOSTV"; ip link set "$HOSTV" up
ip -n "$NS" addr add 198.51.100.10/24 dev eth0; ip -n "$NS" link set eth0 up; ip -n "$NS" link set lo up
"${D[@]}" run -d --name dw-bench-pp -p 18400:9000 dw-test/busybox:1 nc -ll -p 9000 -e dd of=/dev/null bs=1M >/dev/null
printf 'version: 1\nports:\n  rules: [{ name: bench, match: { port: 18400/tcp }, allow: [198.51.100.0/24] }]\n' >"$WORK/policy.yaml"

SEND='const net=require("node:net");const total=1<<30,chunk=Buffer.alloc(1<<20);let sent=0;const t0=process.hrtime.bigint();
const s=net.connect({host:"198.51.100.1",port:18400,localAddress:"198.51.100.10"});
s.on("connect",function pump(){while(sent<total){sent+=chunk.length;if(!s.write(chunk))return s.once("drain",pump)}s.end()});
s.on("close",()=>console.log((total/1e6/(Number(process.hrtime.bigint()-t0)/1e9)).toFixed(0)));s.on("error",e=>{console.error(e.message);process.exit(1)});'
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { for _ in 1 2 3 4 5; do ip netns exec "$NS" node -e "$SEND"; done | median; }

node dist/cli/main.js firewall remove >/dev/null
sleep 0.5
floor=$(measure)
node dist/cli/main.js run --config config/config.yaml >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 50); do nft list set inet dockwarden allow4 2>/dev/null | grep -q 18400 && break; sleep 0.1; done
nft list set inet dockwarden allow4 | grep -q 18400 || { echo "per-packet-cost: the daemon never allowed the client" >&2; exit 1; }
with=$(measure)
ratio=$(awk -v a="$with" -v b="$floor" 'BEGIN { printf "%.2f", a / b }')
echo "per-packet-cost: upload through a published port, 1 GiB x5, median"
echo "  floor (no dockwarden table): ${floor} MB/s"
echo "  every packet judged:         ${with} MB/s   ratio ${ratio}"
echo "{\"bench\":\"per-packet-cost\",\"floorMBps\":${floor},\"withMBps\":${with},\"ratio\":${ratio}}"
