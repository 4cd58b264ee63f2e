#!/usr/bin/env bash
# scripts/test-env.sh — the private Docker test environment (README "Development").
#
#   scripts/test-env.sh up            install missing Debian packages, start the private dockerd,
#                                     build the test image dw-test/busybox:1 (idempotent)
#   scripts/test-env.sh down [--purge] remove every container on the test daemon, stop it, delete
#                                     its bridge; --purge also deletes the data root and the
#                                     iptables rules Docker left for the test bridge
#   scripts/test-env.sh stop-dockerd  stop only the daemon (containers, bridge, data stay): `up` restarts
#                                     it — for tests of a dockerd restart
#   scripts/test-env.sh install       only install the missing Debian packages (CI, demo)
#   scripts/test-env.sh status        print the state; exit 0 when up, 3 when down
#   scripts/test-env.sh env           print the export lines for the tests (eval "$(... env)")
#
# The private daemon never shares anything with another dockerd on the machine:
#   socket      unix:///run/dw-test/docker.sock      (tests read DW_TEST_DOCKER_HOST)
#   data root   /var/lib/dw-test/docker             (kept by `down`, so the next `up` is fast)
#   exec root   /run/dw-test/exec, pidfile /run/dw-test/dockerd.pid, log /run/dw-test/dockerd.log
#   containerd  namespace dw-test (matters only if a system containerd is running and gets reused)
#   bridge      dwtest0 — always its own bridge, never docker0. dockerd refuses --bip together with
#               --bridge, so this script creates the bridge and gives it its address. The subnet is
#               the first 10.X.0.0/16 block (X = 213..220) that no route on the machine overlaps
#               (nor 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24): the bridge gets 10.X.0.1/24 and
#               user-defined networks come from 10.X.128.0/17 (--default-address-pool, /24 each).
#               DW_TEST_BLOCK=10.X.0.0/16 forces a block; it is still refused if taken.
#   iptables    --iptables=true (the default): Docker's real NAT/filter rules, in the host's tables.
#               Note: those chains (DOCKER, DOCKER-USER, ...) are shared with any other dockerd.
# Concurrent invocations are serialised with flock on /run/dw-test.lock.
set -euo pipefail

readonly RUN_DIR=/run/dw-test
readonly DATA_DIR=/var/lib/dw-test
readonly DATA_ROOT=$DATA_DIR/docker
readonly EXEC_ROOT=$RUN_DIR/exec
readonly PIDFILE=$RUN_DIR/dockerd.pid
readonly LOGFILE=$RUN_DIR/dockerd.log
readonly SOCK_PATH=$RUN_DIR/docker.sock
readonly SOCK=unix://$SOCK_PATH
readonly ENVFILE=$RUN_DIR/env
readonly LOCKFILE=/run/dw-test.lock
readonly BRIDGE=dwtest0
readonly IMAGE=dw-test/busybox:1
# An OCI runtime for tests of privileged containers (see scripts/test-runtime/runc-host-caps):
# copied under RUN_DIR so the dockerd flag does not depend on where the checkout lives.
readonly HOST_CAPS_RUNTIME=dw-host-caps
readonly HOST_CAPS_SHIM=$RUN_DIR/runc-host-caps
# the test environment, plus build-essential/python3 for node-gyp (the one native addon, unix-dgram);
# docker-registry: the image tests start their own on loopback for real repo digests (no service is used);
# jq: the dw-host-caps runtime edits OCI configs with it; systemd: the unit tests run systemd-analyze verify;
# libcap2-bin: capsh decodes capability masks in the bridge tests (the daemon under the unit's set);
# the Debian package, Prometheus and Ansible tests (issue #19): dpkg-dev (dpkg-shlibdeps), mmdebstrap
# (scratch Debian roots), lintian, prometheus (promtool and a real server, started by the test on loopback), ansible;
# systemd-container: systemd-nspawn boots a Debian root under systemd for the booted-unit test (issue #15)
# podman and netavark: the Podman compatibility test runs a rootful `podman system service` of its own
readonly PACKAGES=(docker.io iptables nftables podman netavark busybox-static conntrack iproute2 curl jq build-essential python3 docker-registry systemd
  dpkg-dev mmdebstrap lintian prometheus ansible libcap2-bin systemd-container)
readonly START_TIMEOUT=30
readonly STOP_TIMEOUT=30
# ranges that belong to the machine / the test clients: never give them to Docker
readonly RESERVED=(192.0.2.0/24 198.51.100.0/24 203.0.113.0/24)

log() { printf 'test-env: %s\n' "$*" >&2; }
die() { printf 'test-env: error: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
dk() { docker -H "$SOCK" "$@"; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

lock() {
  exec 9>"$LOCKFILE"
  flock -w 300 9 || die "another test-env.sh holds $LOCKFILE for more than 300 s"
}

# ---------------------------------------------------------------- packages
install_packages() {
  local missing=() p status
  for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian starts the package's registry service on :5000 (prometheus on :9090, its node exporter
    # on :9100); the tests start their own on loopback.
    if command -v systemctl >/dev/null; then
      local -A services=([docker-registry]=docker-registry [prometheus]="prometheus prometheus-node-exporter")
      local unit
      for p in "${!services[@]}"; do
        [[ " ${missing[*]} " == *" $p "* ]] || continue
        for unit in ${services[$p]}; do systemctl disable --now "$unit.service" >/dev/null 2>&1 || true; done
      done
    fi
  fi
  command -v dockerd >/dev/null || die "dockerd not found after installing docker.io"
  command -v docker >/dev/null || die "docker CLI not found after installing docker.io"
}

# ---------------------------------------------------------------- addresses
ip2int() {
  local IFS=. a b c d
  read -r a b c d <<<"$1"
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# overlaps A/a B/b → exit 0 when the two prefixes share an address
overlaps() {
  local an=${1%/*} al=${1#*/} bn=${2%/*} bl=${2#*/} m shift
  [[ $1 == */* ]] || al=32
  [[ $2 == */* ]] || bl=32
  m=$((al < bl ? al : bl))
  ((m == 0)) && return 0
  shift=$((32 - m))
  (($(ip2int "$an") >> shift == $(ip2int "$bn") >> shift))
}

# prints "prefix dev" for every IPv4 route in every table, except default routes
routes() {
  ip -4 -o route show table all | awk '
    { i = 1
      if ($1 ~ /^(local|broadcast|anycast|unicast|unreachable|prohibit|blackhole|throw|multicast|nat)$/) i = 2
      if ($i == "default") next
      dev = "-"
      for (j = i; j < NF; j++) if ($j == "dev") dev = $(j + 1)
      print $i, dev }'
}

# block_free 10.X.0.0/16 → 0 when nothing but our own bridge routes into it
block_free() {
  local block=$1 r prefix dev
  for r in "${RESERVED[@]}"; do
    if overlaps "$block" "$r"; then return 1; fi
  done
  while read -r prefix dev; do
    [[ $dev == "$BRIDGE" ]] && continue
    if overlaps "$block" "$prefix"; then
      log "$block is taken: route $prefix dev $dev"
      return 1
    fi
  done < <(routes)
  return 0
}

bridge_addr() { ip -4 -o addr show dev "$BRIDGE" 2>/dev/null | awk '{print $4; exit}'; }

# sets BLOCK (10.X.0.0/16), BIP (10.X.0.1/24) and POOL (10.X.128.0/17); creates/updates the bridge
setup_bridge() {
  local cur x
  cur=$(bridge_addr || true)
  if [[ -n $cur ]]; then
    x=$(cut -d. -f2 <<<"$cur")
    BLOCK=10.$x.0.0/16
    [[ $cur == 10.*.0.1/24 ]] || die "$BRIDGE has an unexpected address $cur; run: $0 down"
    [[ -z ${DW_TEST_BLOCK:-} || ${DW_TEST_BLOCK} == "$BLOCK" ]] ||
      die "$BRIDGE already uses $BLOCK but DW_TEST_BLOCK=$DW_TEST_BLOCK; run: $0 down"
    block_free "$BLOCK" || die "the test bridge's block $BLOCK is now also routed elsewhere; refusing"
  else
    BLOCK=
    if [[ -n ${DW_TEST_BLOCK:-} ]]; then
      [[ $DW_TEST_BLOCK =~ ^10\.([0-9]{1,3})\.0\.0/16$ ]] || die "DW_TEST_BLOCK must look like 10.X.0.0/16"
      block_free "$DW_TEST_BLOCK" || die "DW_TEST_BLOCK=$DW_TEST_BLOCK is already routed; refusing"
      BLOCK=$DW_TEST_BLOCK
    else
      for x in 213 214 215 216 217 218 219 220; do
        if block_free "10.$x.0.0/16"; then BLOCK=10.$x.0.0/16; break; fi
      done
      [[ -n $BLOCK ]] || die "no free 10.X.0.0/16 block (X=213..220) for the test bridge; set DW_TEST_BLOCK"
    fi
    x=$(cut -d. -f2 <<<"$BLOCK")
    ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add name "$BRIDGE" type bridge
    ip addr add "10.$x.0.1/24" dev "$BRIDGE"
    log "bridge $BRIDGE = 10.$x.0.1/24"
  fi
  ip link set "$BRIDGE" up
  BIP=10.$x.0.1/24
  POOL=10.$x.128.0/17
}

write_env() {
  cat >"$ENVFILE" <<EOF
export DW_TEST_DOCKER_HOST=$SOCK
export DW_TEST_BRIDGE=$BRIDGE
export DW_TEST_BRIDGE_CIDR=$BIP
export DW_TEST_ADDRESS_POOL=$POOL
export DW_TEST_IMAGE=$IMAGE
EOF
}

# ---------------------------------------------------------------- dockerd
dockerd_pid() {
  local pid
  [[ -s $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -d /proc/$pid ]] || return 1
  # the pidfile must really point at a dockerd (pids get reused)
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *dockerd*"$SOCK"* ]] || return 1
  echo "$pid"
}

# Bounded: a wedged dockerd accepts the connection and never answers.
daemon_answers() { timeout 10 docker -H "$SOCK" info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

has_host_caps_runtime() { dk info --format '{{json .Runtimes}}' 2>/dev/null | grep -q "\"$HOST_CAPS_RUNTIME\""; }

start_dockerd() {
  local t0 pid deadline
  mkdir -p "$RUN_DIR" "$EXEC_ROOT" "$DATA_ROOT"
  install -m 0755 "$(dirname "$0")/test-runtime/runc-host-caps" "$HOST_CAPS_SHIM"
  rm -f "$PIDFILE"
  t0=$(now_ms)
  : >>"$LOGFILE"
  printf '\n==== %s test-env up\n' "$(date -Is)" >>"$LOGFILE"
  setsid nohup dockerd \
    --host "$SOCK" \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$PIDFILE" \
    --bridge "$BRIDGE" \
    --default-address-pool "base=$POOL,size=24" \
    --iptables=true \
    --containerd-namespace dw-test \
    --containerd-plugins-namespace dw-test-plugins \
    --cgroup-parent dw-test \
    --add-runtime "$HOST_CAPS_RUNTIME=$HOST_CAPS_SHIM" \
    >>"$LOGFILE" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  pid=$!
  disown "$pid" 2>/dev/null || true
  deadline=$((SECONDS + START_TIMEOUT))
  until daemon_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$LOGFILE" >&2
      die "dockerd exited during start-up (log: $LOGFILE)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$LOGFILE" >&2
      die "dockerd did not answer on $SOCK within ${START_TIMEOUT}s (log: $LOGFILE)"
    fi
    sleep 0.2
  done
  log "dockerd up (pid $pid, $(dk info --format '{{.ServerVersion}} {{.Driver}}')) in $(($(now_ms) - t0)) ms"
}

build_image() {
  local t0 bb file_out root applet
  if dk image inspect "$IMAGE" >/dev/null 2>&1; then return 0; fi
  t0=$(now_ms)
  bb=/bin/busybox
  [[ -x $bb ]] || die "$bb missing (busybox-static)"
  file_out=$(LC_ALL=C ldd "$bb" 2>&1 || true)
  [[ $file_out == *"not a dynamic executable"* || $file_out == *"statically linked"* ]] ||
    die "$bb is not statically linked (is the busybox package installed instead of busybox-static?)"
  IMAGE_TMP=$(mktemp -d /tmp/dw-test-image.XXXXXX)
  trap 'rm -rf "$IMAGE_TMP"' EXIT
  root=$IMAGE_TMP/root
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/www,proc,sys,dev}
  chmod 1777 "$root/tmp"
  cp "$bb" "$root/bin/busybox"
  while read -r applet; do
    [[ -n $applet && $applet != bin/busybox ]] || continue
    mkdir -p "$root/$(dirname "$applet")"
    [[ -e $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
  done < <("$bb" --list-full)
  for applet in sh sleep httpd nc wget cat ls id; do
    [[ -e $root/bin/$applet || -e $root/usr/bin/$applet || -e $root/sbin/$applet || -e $root/usr/sbin/$applet ]] ||
      die "busybox lacks the applet $applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'dw-test busybox\n' >"$root/var/www/index.html"
  tar -C "$root" -c . | dk import \
    --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' \
    --change 'CMD ["sh"]' \
    - "$IMAGE" >/dev/null
  rm -rf "$IMAGE_TMP"
  log "built $IMAGE in $(($(now_ms) - t0)) ms"
}

cmd_up() {
  need_root
  local t0
  t0=$(now_ms)
  install_packages
  mkdir -p "$RUN_DIR"
  lock
  if dockerd_pid >/dev/null && daemon_answers && has_host_caps_runtime; then
    # already running: just verify bridge + image
    setup_bridge
    write_env
    build_image
    log "already up (pid $(dockerd_pid)); verified in $(($(now_ms) - t0)) ms"
    return 0
  fi
  if pid=$(dockerd_pid); then
    log "dockerd pid $pid does not answer on $SOCK, or was started without the $HOST_CAPS_RUNTIME runtime: restarting it"
    stop_dockerd
  fi
  setup_bridge
  write_env
  start_dockerd
  build_image
  log "up in $(($(now_ms) - t0)) ms — $SOCK, bridge $BRIDGE $BIP"
}

stop_dockerd() {
  local pid deadline
  pid=$(dockerd_pid) || return 0
  log "stopping dockerd pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while [[ -d /proc/$pid ]]; do
    if ((SECONDS >= deadline)); then
      log "dockerd did not exit within ${STOP_TIMEOUT}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
  done
  # a containerd that dockerd supervised exits with it; one left by a SIGKILL is ended here
  local cpidf=$EXEC_ROOT/containerd/containerd.pid cpid
  if [[ -s $cpidf ]]; then
    cpid=$(<"$cpidf")
    if [[ $cpid =~ ^[0-9]+$ && -d /proc/$cpid ]] &&
      [[ $(tr '\0' ' ' <"/proc/$cpid/cmdline" 2>/dev/null) == *containerd*"$EXEC_ROOT"* ]]; then
      kill -TERM "$cpid" 2>/dev/null || true
    fi
  fi
  rm -f "$PIDFILE"
}

# unmount anything still mounted below a directory (deepest first)
umount_below() {
  local dir=$1 m
  awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# delete the iptables rules that mention the test bridge or block (only with --purge)
purge_iptables() {
  local table rule block=${1:-}
  for table in filter nat; do
    iptables -t "$table" -S 2>/dev/null | grep '^-A ' |
      grep -E -- "(-i|-o) $BRIDGE( |$)${block:+|-(s|d) ${block%.0.0/16}\\.}" |
      while read -r rule; do
        # shellcheck disable=SC2086
        iptables -t "$table" ${rule/#-A/-D} 2>/dev/null || true
      done
  done
}

cmd_down() {
  need_root
  local purge=0 block=""
  [[ ${1:-} == --purge ]] && purge=1
  mkdir -p "$RUN_DIR"
  lock
  if dockerd_pid >/dev/null && daemon_answers; then
    local ids
    ids=$(dk ps -aq)
    if [[ -n $ids ]]; then
      log "removing $(wc -w <<<"$ids") container(s)"
      # shellcheck disable=SC2086
      dk rm -f -v $ids >/dev/null || true
    fi
  fi
  stop_dockerd
  local cur
  cur=$(bridge_addr || true)
  [[ -n $cur ]] && block="10.$(cut -d. -f2 <<<"$cur").0.0/16"
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  umount_below "$EXEC_ROOT"
  rm -f "$ENVFILE"
  if ((purge)); then
    purge_iptables "$block"
    umount_below "$DATA_DIR"
    rm -rf "$DATA_DIR" "$EXEC_ROOT"
    log "purged $DATA_DIR"
  fi
  log "down"
}

cmd_status() {
  local pid
  if pid=$(dockerd_pid) && daemon_answers; then
    echo "up: dockerd pid $pid on $SOCK ($(dk info --format '{{.ServerVersion}}, {{.Containers}} containers'))"
    echo "bridge: $BRIDGE $(bridge_addr || echo '(no address)')"
    if dk image inspect "$IMAGE" >/dev/null 2>&1; then echo "image: $IMAGE present"; else echo "image: $IMAGE MISSING"; fi
    return 0
  fi
  echo "down${pid:+ (dockerd pid $pid does not answer)}"
  return 3
}

cmd_env() {
  if [[ -s $ENVFILE ]]; then
    cat "$ENVFILE"
  else
    echo "export DW_TEST_DOCKER_HOST=$SOCK"
    echo "export DW_TEST_IMAGE=$IMAGE"
  fi
}

case ${1:-} in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  stop-dockerd)
    need_root
    mkdir -p "$RUN_DIR"
    lock
    stop_dockerd
    ;;
  install) need_root; install_packages ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 up | down [--purge] | stop-dockerd | install | status | env" >&2
    exit 2
    ;;
esac
