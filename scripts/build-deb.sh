#!/usr/bin/env bash
# scripts/build-deb.sh — build dockwarden_<version>_<arch>.deb with dpkg-deb, Debian's own tool.
#
#   scripts/build-deb.sh [--out DIR]               DIR/dockwarden_<version>_<arch>.deb (default: deb/)
#   DW_DEB_VERSION=0.1.1 scripts/build-deb.sh      another version (the upgrade test builds a higher one)
#   DW_DEB_COMPRESSION=gzip scripts/build-deb.sh   dpkg-deb -Z (default xz: 24 MB; gzip is ~10x faster to build)
#
# What goes where (the package's maintainer scripts are in deploy/debian/):
#   /usr/lib/dockwarden/            the program (scripts/stage-program.sh: the tree install.sh installs)
#   /usr/lib/dockwarden/bin/node    the Node.js runtime it runs on (below)
#   /usr/sbin/dockwarden            the CLI: that runtime + dist/cli/main.js
#   /lib/systemd/system/            dockwarden.service, dockwarden-firewall.service (ExecStart → /usr/sbin),
#                                   dockwarden-gate.socket (not enabled: the admin turns the gate on)
#   /etc/dockwarden/                config.yaml (0600), policy.yaml — conffiles: an admin's edits survive upgrades
#   /var/lib/dockwarden/            state, made by postinst (0700), removed on purge
#   /usr/share/man/                 dockwarden(8), dockwarden-policy(5)
#   /usr/share/doc/dockwarden/      copyright, changelog, README, examples/
#
# The Node.js runtime: Debian 12's nodejs is 18; dockwarden needs >= 20.19. The package bundles the
# official Node.js binary of the same version as the node that built dist/ and the native addons
# (so their ABI matches), taken from the npm registry package node-linux-<arch> (npm verifies its
# integrity) and cached in $DW_DEB_CACHE (default /var/cache/dockwarden-build).
set -euo pipefail
cd "$(dirname "$0")/.."

out=deb
while (($#)); do
  case $1 in
    --out) out=${2:?--out DIR}; shift 2 ;;
    *) echo "build-deb: unknown option $1 (options: --out DIR)" >&2; exit 2 ;;
  esac
done
say() { printf 'build-deb: %s\n' "$*" >&2; }
for tool in dpkg-deb dpkg-shlibdeps strip; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool missing (apt-get install dpkg-dev binutils)" >&2; exit 2; }
done

version=${DW_DEB_VERSION:-$(node -p 'require("./package.json").version')}
arch=$(dpkg --print-architecture)
node_version=$(node -p process.versions.node)
case $arch in amd64) node_arch=x64 ;; arm64) node_arch=arm64 ;; *) echo "build-deb: no Node.js binary package for $arch" >&2; exit 2 ;; esac
# the engines.node floor of package.json, checked against the node that builds (and is bundled)
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
  { echo "build-deb: node $node_version is older than 20.19" >&2; exit 2; }
# reproducible: file times are clamped to the commit's time
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

cache=${DW_DEB_CACHE:-/var/cache/dockwarden-build}
runtime_tgz=$cache/node-linux-$node_arch-$node_version.tgz
if [[ ! -s $runtime_tgz ]]; then
  mkdir -p "$cache"
  say "fetching the Node.js $node_version runtime (npm package node-linux-$node_arch)"
  fetch=$(mktemp -d "$cache/.fetch.XXXXXX")
  (cd "$fetch" && npm pack --silent "node-linux-$node_arch@$node_version" >/dev/null)
  mv "$fetch/${runtime_tgz##*/}" "$runtime_tgz" # whole or not at all, also for a build running beside this one
  rmdir "$fetch"
fi

work=$(mktemp -d /tmp/dockwarden-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
lib=$root/usr/lib/dockwarden

scripts/stage-program.sh "$lib"
# The npm tree as a Debian package ships it: no compiler intermediates or static libraries of the
# addons (the loaded .node is the copy in build/Release/), no npm/eslint/git dot-files, docs or
# tests of the modules (their LICENSE files stay); nothing in it is executed but through the
# runtime, so only the addons keep an ELF file's bits, stripped like every shipped binary.
find "$lib/node_modules" -depth \( \( -type d \( -name obj.target -o -name .deps \) -path '*/build/Release/*' \) \
  -o \( -type f -name '*.a' -path '*/build/Release/*' \) \
  -o -name .npmignore -o -name '.eslintrc*' -o -name .gitattributes -o -name .husky -o -name .github \
  -o \( -type f \( -iname 'README*' -o -iname 'CHANGELOG*' -o -iname 'HISTORY*' -o -name '*.html' \) \) \
  -o \( -type d -regex '.*/node_modules/\(@[^/]*/\)?[^/@]*/\(test\|tests\|docs\|example\|examples\)' \) \) -exec rm -rf {} +
find "$lib/node_modules" -type f -perm /111 -exec chmod a-x {} +
find "$lib" -type f -name '*.node' -exec chmod 0644 {} + -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +

tar -xzf "$runtime_tgz" -C "$work" package/bin/node package/LICENSE
install -D -m 0755 "$work/package/bin/node" "$lib/bin/node"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$lib/bin/node"

install -d -m 0755 "$root/usr/sbin"
printf '#!/bin/sh\n# dockwarden CLI: the bundled Node.js runtime and the program (package dockwarden)\nexec /usr/lib/dockwarden/bin/node /usr/lib/dockwarden/dist/cli/main.js "$@"\n' >"$root/usr/sbin/dockwarden"
chmod 0755 "$root/usr/sbin/dockwarden"

install -d -m 0755 "$root/lib/systemd/system"
for unit in dockwarden.service dockwarden-firewall.service dockwarden-gate.socket; do
  sed -e 's|/usr/local/bin/dockwarden|/usr/sbin/dockwarden|g' \
    -e 's|^Documentation=.*|Documentation=man:dockwarden(8) file:///usr/share/doc/dockwarden/README.md.gz|' \
    "systemd/$unit" >"$root/lib/systemd/system/$unit"
  chmod 0644 "$root/lib/systemd/system/$unit"
  if grep -q /usr/local "$root/lib/systemd/system/$unit"; then echo "build-deb: $unit still names /usr/local" >&2; exit 1; fi
done

install -d -m 0755 "$root/etc/dockwarden"
install -m 0600 config/config.yaml "$root/etc/dockwarden/config.yaml" # may hold webhook secrets
install -m 0644 config/policy.yaml "$root/etc/dockwarden/policy.yaml"

install -d -m 0755 "$root/usr/share/man/man8" "$root/usr/share/man/man5"
gzip -9n <man/dockwarden.8 >"$root/usr/share/man/man8/dockwarden.8.gz"
gzip -9n <man/dockwarden-policy.5 >"$root/usr/share/man/man5/dockwarden-policy.5.gz"

doc=$root/usr/share/doc/dockwarden
install -d -m 0755 "$doc/examples"
install -m 0644 deploy/debian/copyright "$doc/copyright"
install -m 0644 "$work/package/LICENSE" "$doc/node-LICENSE"
gzip -9n <README.md >"$doc/README.md.gz"
install -m 0644 config/policy.yaml config/policy.strict.yaml config/config.yaml "$doc/examples/"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
{
  printf 'dockwarden (%s) unstable; urgency=medium\n\n' "$version"
  printf '  * Built by scripts/build-deb.sh from commit %s,\n    Node.js %s bundled.\n\n' "$commit" "$node_version"
  printf ' -- dockwarden maintainers <dockwarden@users.noreply.github.com>  %s\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz"

install -d -m 0755 "$root/usr/share/lintian/overrides"
install -m 0644 deploy/debian/lintian-overrides "$root/usr/share/lintian/overrides/dockwarden"

# DEBIAN/: shared-library dependencies of the bundled binaries as dpkg-shlibdeps computes them
mkdir -p "$work/debian" "$root/DEBIAN"
printf 'Source: dockwarden\n\nPackage: dockwarden\nArchitecture: any\n' >"$work/debian/control"
mapfile -t elves < <(find "$lib" -type f \( -name '*.node' -o -path "$lib/bin/node" \) | LC_ALL=C sort)
shlibs=$(cd "$work" && dpkg-shlibdeps -O --warnings=0 "${elves[@]/#"$work"/.}" | sed -n 's/^shlibs:Depends=//p')
[[ -n $shlibs ]] || { echo "build-deb: dpkg-shlibdeps found no dependency" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" -e "s|@SHLIBS@|$shlibs|" deploy/debian/control.in >"$root/DEBIAN/control"
(cd "$root" && find etc -type f | LC_ALL=C sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum | sed 's| \./| |') >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/dockwarden_${version}_$arch.deb
dpkg-deb --root-owner-group -Z"${DW_DEB_COMPRESSION:-xz}" --build "$root" "$deb" >/dev/null
say "$deb ($(du -h "$deb" | cut -f1), installs $((size / 1024)) MiB; Node.js $node_version bundled)"
echo "$deb"
