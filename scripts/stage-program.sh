#!/usr/bin/env bash
# scripts/stage-program.sh DEST — put the program tree of this checkout into DEST (which must not
# exist yet): dist/, schema/, package.json + lock, the native addons (SELinux labels, network
# namespaces, nftables events, heap trimming, procfs reads) where dist/ loads them from, and the production
# node_modules. Builds first if needed. Shared by scripts/install.sh (which swaps
# DEST in whole) and scripts/build-deb.sh (which packages it), so both ship the same tree.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: stage-program.sh DEST}
[[ ! -e $dest ]] || { echo "stage-program: $dest already exists" >&2; exit 2; }

[[ -d node_modules ]] || npm ci --no-audit --no-fund
addons=(dw_selinux dw_netns dw_nftevents dw_heap dw_procfs)
built=1
for addon in "${addons[@]}"; do [[ -f native/build/Release/$addon.node ]] || built=0; done
[[ -f dist/cli/main.js && $built == 1 ]] || npm run build --silent

mkdir -p "$dest"
cp -a dist schema package.json package-lock.json "$dest/"
for addon in "${addons[@]}"; do
  install -D -m 0755 "native/build/Release/$addon.node" "$dest/native/build/Release/$addon.node"
done
cp -a node_modules "$dest/"
(cd "$dest" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete)
chmod -R go-w "$dest"
chmod 0755 "$dest"
