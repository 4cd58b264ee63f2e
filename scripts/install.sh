#!/usr/bin/env bash
# scripts/install.sh — install dockwarden from this checkout onto this machine (or into DESTDIR).
#
#   scripts/install.sh              build if needed, install, enable and start the units (systemd hosts)
#   scripts/install.sh --no-start   install and enable, start nothing
#   DESTDIR=/tmp/root scripts/install.sh   install into a scratch root (no systemctl; for packaging, tests)
#
# Idempotent: program files are replaced, an admin's /etc/dockwarden/{config,policy}.yaml never are.
#   /usr/local/lib/dockwarden/          dist/, the SELinux addon, production node_modules, package.json, schema/
#   /usr/local/bin/dockwarden           wrapper: this machine's node + the CLI
#   /usr/local/lib/systemd/system/      dockwarden.service, dockwarden-firewall.service
#   /usr/local/share/doc/dockwarden/    README.md, example policies
#   /etc/dockwarden/                    config.yaml (0600: may hold webhook secrets), policy.yaml
#   /var/lib/dockwarden/                state (0700)
# scripts/uninstall.sh takes it all out again.
set -euo pipefail
cd "$(dirname "$0")/.."

start=1
for arg in "$@"; do
  case $arg in
    --no-start) start=0 ;;
    *) echo "install: unknown option $arg (options: --no-start)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "install: run as root" >&2; exit 2; }

# shellcheck source=scripts/install-layout.sh
source scripts/install-layout.sh # the cwd is the checkout (cd above)
say() { printf 'install: %s\n' "$*" >&2; }

node=$(command -v node) || { echo "install: node not found (Node.js >= 20.19 is required)" >&2; exit 2; }
[[ -d node_modules ]] || npm ci --no-audit --no-fund
[[ -f dist/cli/main.js && -f native/build/Release/dw_selinux.node && -f native/build/Release/dw_netns.node ]] || npm run build --silent

# Program files: staged next to the target and swapped in, so a running daemon never sees half a tree.
stage=$(mktemp -d "${LIB%/*}/.dockwarden.XXXXXX" 2>/dev/null || { mkdir -p "${LIB%/*}" && mktemp -d "${LIB%/*}/.dockwarden.XXXXXX"; })
trap 'rm -rf "$stage"' EXIT
cp -a dist schema package.json package-lock.json "$stage/"
# the SELinux and network-namespace addons (built by npm run build), where dist/ loads them from
install -D -m 0755 native/build/Release/dw_selinux.node "$stage/native/build/Release/dw_selinux.node"
install -D -m 0755 native/build/Release/dw_netns.node "$stage/native/build/Release/dw_netns.node"
cp -a node_modules "$stage/"
(cd "$stage" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete)
chmod -R go-w "$stage"
chmod 0755 "$stage"
rm -rf "$LIB.old"
[[ -e $LIB ]] && mv "$LIB" "$LIB.old"
mv "$stage" "$LIB"
rm -rf "$LIB.old"
trap - EXIT
say "program in ${LIB#"$ROOT"}"

install -d -m 0755 "${BIN%/*}" "$UNITS" "$DOC"
printf '#!/bin/sh\n# dockwarden, installed by scripts/install.sh\nexec %s /usr/local/lib/dockwarden/dist/cli/main.js "$@"\n' "$node" >"$BIN.new"
chmod 0755 "$BIN.new" && mv "$BIN.new" "$BIN"
install -m 0644 systemd/dockwarden.service systemd/dockwarden-firewall.service "$UNITS/"
install -m 0644 README.md config/policy.yaml config/policy.strict.yaml config/config.yaml "$DOC/"

install -d -m 0755 "$ETC"
for f in config.yaml policy.yaml; do
  if [[ -e $ETC/$f ]]; then
    say "kept ${ETC#"$ROOT"}/$f (yours); the shipped example is in ${DOC#"$ROOT"}/$f"
  else
    mode=0644
    [[ $f == config.yaml ]] && mode=0600
    install -m "$mode" "config/$f" "$ETC/$f"
    say "created ${ETC#"$ROOT"}/$f"
  fi
done
install -d -m 0700 "$STATE"

if [[ -z $ROOT && -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable dockwarden-firewall.service dockwarden.service
  if ((start)); then
    systemctl start dockwarden-firewall.service dockwarden.service
    say "started; systemctl status dockwarden; journalctl -u dockwarden"
  fi
elif [[ -z $ROOT ]]; then
  say "systemd is not running here: units installed, not enabled; run the daemon with: dockwarden run"
fi
"$node" "$LIB/dist/cli/main.js" policy validate "$ETC/policy.yaml" >&2 || say "WARNING: ${ETC#"$ROOT"}/policy.yaml does not validate; the daemon will refuse to start with it"
