#!/usr/bin/env bash
# scripts/stage-program.sh DEST — put the program tree of this checkout into DEST (which must not
# exist yet): dist/, schema/, package.json + lock, the SELinux, network-namespace and nftables-events
# addons where dist/ loads them from, and
# the production node_modules. Builds first if needed. Shared by scripts/install.sh (which swaps
# DEST in whole) and scripts/build-deb.sh (which packages it), so both ship the same tree.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: stage-program.sh DEST}
[[ ! -e $dest ]] || { echo "stage-program: $dest already exists" >&2; exit 2; }

[[ -d node_modules ]] || npm ci --no-audit --no-fund
[[ -f dist/cli/main.js && -f native/build/Release/dw_selinux.node && -f native/build/Release/dw_netns.node && -f native/build/Release/dw_nftevents.node ]] || npm run build --silent

mkdir -p "$dest"
cp -a dist schema package.json package-lock.json "$dest/"
install -D -m 0755 native/build/Release/dw_selinux.node "$dest/native/build/Release/dw_selinux.node"
install -D -m 0755 native/build/Release/dw_netns.node "$dest/native/build/Release/dw_netns.node"
install -D -m 0755 native/build/Release/dw_nftevents.node "$dest/native/build/Release/dw_nftevents.node"
cp -a node_modules "$dest/"
(cd "$dest" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete)
chmod -R go-w "$dest"
chmod 0755 "$dest"
