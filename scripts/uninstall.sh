#!/usr/bin/env bash
# scripts/uninstall.sh — take out what scripts/install.sh put in (also into DESTDIR).
#
#   scripts/uninstall.sh                     stop and disable the units, remove the program, units, docs
#   scripts/uninstall.sh --remove-firewall   also take dockwarden's nftables/iptables rules out
#                                            (published ports are then unfiltered)
#   scripts/uninstall.sh --purge             also /etc/dockwarden (your config and policy) and the state
# Idempotent: what is already gone is skipped.
set -euo pipefail

remove_firewall=0 purge=0
for arg in "$@"; do
  case $arg in
    --remove-firewall) remove_firewall=1 ;;
    --purge) purge=1 ;;
    *) echo "uninstall: unknown option $arg (options: --remove-firewall, --purge)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "uninstall: run as root" >&2; exit 2; }

# shellcheck source=scripts/install-layout.sh
source "$(dirname "$0")/install-layout.sh"
say() { printf 'uninstall: %s\n' "$*" >&2; }

if [[ -z $ROOT && -d /run/systemd/system ]]; then
  systemctl disable --now dockwarden-gate.socket dockwarden.service dockwarden-firewall.service 2>/dev/null || true
fi
if ((remove_firewall)) && [[ -f $LIB/dist/cli/main.js ]]; then
  config=()
  [[ -f $ETC/config.yaml ]] && config=(--config "$ETC/config.yaml")
  node "$LIB/dist/cli/main.js" firewall remove "${config[@]}" >&2
fi
rm -rf "$LIB" "$BIN" "$DOC" "$UNITS/dockwarden.service" "$UNITS/dockwarden-firewall.service" "$UNITS/dockwarden-gate.socket"
if ((purge)); then
  rm -rf "$ETC" "$STATE"
  say "removed ${ETC#"$ROOT"} and ${STATE#"$ROOT"}"
elif [[ -e $ETC ]]; then
  say "kept ${ETC#"$ROOT"} (--purge removes it)"
fi
# the directories install.sh made, where nothing else lives in them now
for dir in "${UNITS}" "${UNITS%/*}" "${BIN%/*}" "${DOC%/*}" "${DOC%/*/*}" "$ROOT/usr/local/lib" "$ROOT/usr/local" "$ROOT/usr"; do
  [[ -n $ROOT || $dir == "$UNITS" || $dir == "${UNITS%/*}" ]] || continue
  rmdir "$dir" 2>/dev/null || true
done
if [[ -n $ROOT ]]; then rmdir "$ROOT/var/lib" "$ROOT/var" "$ROOT/etc" 2>/dev/null || true; fi
[[ -z $ROOT && -d /run/systemd/system ]] && systemctl daemon-reload
say "done"
