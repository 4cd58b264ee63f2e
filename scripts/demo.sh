#!/usr/bin/env bash
# One command from a fresh Debian checkout to a running dockwarden:
# installs what is missing, builds, starts a private test dockerd (its own socket, data root and
# bridge; the host's Docker, if any, is untouched), starts example containers with published ports,
# runs the daemon on the example policy, shows it at work (an allowed and a denied client, a
# forbidden container killed), then keeps the daemon in the foreground. Ctrl-C stops it.
# DW_DEMO_EXIT_AFTER_SHOW=1 stops the daemon and exits after the show (for tests).
#
# The clients live in a network namespace joined to the host by a veth pair, with addresses from
# 198.51.100.0/24 only (a documentation range; the demo refuses to start if anything on the host
# already routes it) and are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo: run as root (dockwarden manages Docker and netfilter)" >&2; exit 2; }
node_major=$(node -p 'process.versions.node.split(".").map(Number).join(" ")' 2>/dev/null || echo "0 0")
read -r major minor _ <<<"$node_major"
if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
  echo "demo: Node.js >= 20.19 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 2
fi

scripts/test-env.sh up
[ -d node_modules ] || npm ci
npm run build --silent

eval "$(scripts/test-env.sh env)"
dk() { docker -H "$DW_TEST_DOCKER_HOST" "$@"; }
NS=dw-demo HOST_VETH=dw-demo-h CLIENT_VETH=dw-demo-c HOST_ADDR=198.51.100.1
ALLOWED=198.51.100.10 DENIED=198.51.100.100   # in / not in the example policy's `office` source (198.51.100.0/26)
if ip -4 -o route show table all | grep -q '198\.51\.100\.'; then
  echo "demo: 198.51.100.0/24 is already routed on this host; not creating the demo clients" >&2; exit 2
fi

daemon=
cleanup() {
  [ -z "$daemon" ] || kill -TERM "$daemon" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$HOST_VETH" 2>/dev/null || true
  dk rm -f dw-demo-forbidden >/dev/null 2>&1 || true
}
trap cleanup EXIT

dk rm -f dw-demo-web grafana-demo dw-demo-forbidden >/dev/null 2>&1 || true
dk run -d --name dw-demo-web -p 8080:80 dw-test/busybox:1 httpd -f -p 80 -h / >/dev/null
# Its name matches the example policy's `grafana` rule (port 3000/tcp, allow: office, 198.51.100.77).
dk run -d --name grafana-demo -p 3000:80 dw-test/busybox:1 httpd -f -p 80 -h /var/www >/dev/null
echo "demo: started containers dw-demo-web (-p 8080:80) and grafana-demo (-p 3000:80); starting dockwarden" >&2

ip netns add "$NS"
ip link add "$HOST_VETH" type veth peer name "$CLIENT_VETH" netns "$NS"
ip addr add "$HOST_ADDR/24" dev "$HOST_VETH"
ip link set "$HOST_VETH" up
ip -n "$NS" addr add "$ALLOWED/24" dev "$CLIENT_VETH"
ip -n "$NS" addr add "$DENIED/24" dev "$CLIENT_VETH"
ip -n "$NS" link set "$CLIENT_VETH" up
ip -n "$NS" link set lo up

export DOCKWARDEN_DOCKER_SOCKET="${DW_TEST_DOCKER_HOST#unix://}"
export DOCKWARDEN_POLICY="$PWD/config/policy.yaml"
export DOCKWARDEN_STATE_DIR=/var/lib/dw-test/dockwarden
node dist/cli/main.js run --config config/config.yaml &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null || true' INT TERM

# An HTTP status from the client's source address to the host's published port, 000 for no answer.
fetch() { ip netns exec "$NS" curl -s -o /dev/null -w '%{http_code}' -m "$3" --interface "$1" "http://$HOST_ADDR:$2/" || true; }
say() { echo "demo: $*" >&2; }

# Wait (bounded) until dockwarden has put the policy into the kernel: `status` compares the two.
for _ in $(seq 60); do
  kill -0 "$daemon" 2>/dev/null || { say "dockwarden exited"; exit 1; }
  node dist/cli/main.js status --json --config config/config.yaml 2>/dev/null | grep -q '"inSync": true' && break
  sleep 0.5
done
code=$(fetch "$ALLOWED" 3000 3)
if [ "$code" = 000 ]; then say "client $ALLOWED (office) -> grafana-demo:3000: NOT through (no answer in 30 s)"
else say "client $ALLOWED (office) -> grafana-demo:3000: got through (HTTP $code)"; fi
code=$(fetch "$DENIED" 3000 3)
if [ "$code" = 000 ]; then say "client $DENIED (not in the policy) -> grafana-demo:3000: refused (no answer in 3 s)"
else say "client $DENIED (not in the policy) -> grafana-demo:3000: got through (HTTP $code)"; fi
code=$(fetch "$ALLOWED" 8080 3)
if [ "$code" = 000 ]; then say "client $ALLOWED (office) -> dw-demo-web:8080: refused (no rule: ports.default deny)"
else say "client $ALLOWED (office) -> dw-demo-web:8080: got through (HTTP $code)"; fi

dk run -d --name dw-demo-forbidden --cap-add SYS_ADMIN dw-test/busybox:1 sleep 600 >/dev/null
say "started container dw-demo-forbidden --cap-add SYS_ADMIN (forbidden by containers.capabilities, action: kill)"
state=running
for _ in $(seq 60); do
  state=$(dk inspect -f '{{.State.Status}} {{.State.ExitCode}}' dw-demo-forbidden); [ "${state%% *}" = running ] || break
  sleep 0.5
done
if [ "${state%% *}" = running ]; then say "container dw-demo-forbidden: still running after 30 s"
else say "container dw-demo-forbidden: killed by dockwarden ($state)"; fi

if [ "${DW_DEMO_EXIT_AFTER_SHOW:-}" = 1 ]; then say "show over; stopping dockwarden"; kill -TERM "$daemon"
else say "dockwarden keeps running; Ctrl-C stops it"; fi
status=0
while kill -0 "$daemon" 2>/dev/null; do wait "$daemon" || status=$?; done
daemon=
exit "$status"
