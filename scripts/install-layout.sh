# scripts/install-layout.sh — where an installed dockwarden lives; sourced by install.sh and
# uninstall.sh, so both always agree. DESTDIR (optional) is a scratch root everything goes under.
readonly ROOT=${DESTDIR:-}
readonly LIB=$ROOT/usr/local/lib/dockwarden
readonly BIN=$ROOT/usr/local/bin/dockwarden
readonly UNITS=$ROOT/usr/local/lib/systemd/system
readonly DOC=$ROOT/usr/local/share/doc/dockwarden
readonly ETC=$ROOT/etc/dockwarden
readonly STATE=$ROOT/var/lib/dockwarden
