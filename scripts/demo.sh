#!/usr/bin/env bash
# One command from a fresh Debian checkout to a running dockwarden:
# installs what is missing, builds, starts a private test dockerd (its own socket, data root and
# bridge; the host's Docker, if any, is untouched), starts one example container with a published
# port, and runs the daemon in the foreground on the example policy. Ctrl-C stops the daemon.
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
docker -H "$DW_TEST_DOCKER_HOST" rm -f dw-demo-web >/dev/null 2>&1 || true
docker -H "$DW_TEST_DOCKER_HOST" run -d --name dw-demo-web -p 8080:80 dw-test/busybox:1 \
  httpd -f -p 80 -h / >/dev/null
echo "demo: started container dw-demo-web (-p 8080:80); starting dockwarden" >&2

export DOCKWARDEN_DOCKER_SOCKET="${DW_TEST_DOCKER_HOST#unix://}"
export DOCKWARDEN_POLICY="$PWD/config/policy.yaml"
export DOCKWARDEN_STATE_DIR=/var/lib/dw-test/dockwarden
exec node dist/cli/main.js run --config config/config.yaml
