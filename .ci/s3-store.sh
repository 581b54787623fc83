#!/usr/bin/env bash
# A single-node Ceph RADOS Gateway (RGW 16.2 from Debian 12) for the object-store tests: one mon,
# one OSD (BlueStore on a sparse file) and one radosgw, all bound to 127.0.0.1, with everything
# (config, data, pid files, logs) under one directory. Tests only: no authentication inside the
# cluster, fixed S3 keys, plain HTTP.
#
#   .ci/s3-store.sh start DIR [PORT]   installs the packages if missing, starts what is not running,
#                                      prints S3_ENDPOINT/S3_ACCESS_KEY/S3_SECRET_KEY/S3_REGION
#                                      (also in DIR/s3.env) once a signed request succeeds
#   .ci/s3-store.sh stop DIR           stops radosgw, the OSD and the mon by their pid files
#
# Why the settings are what they are:
# - msgr2 only, on a port of its own, so the mon binds no second (v1) port;
# - "auth ... = none" needs "ms mon client mode = crc", or radosgw cannot fetch its config;
# - pools of size 1 and 8 placement groups, no autoscaler, no manager: one OSD serves everything;
# - a short paxos interval, since creating the OSD and RGW's pools is a series of map changes;
# - tcp_nodelay on the RGW front end: without it small requests wait for delayed ACKs;
# - no fast shutdown surprises: BlueStore keeps acknowledged objects across kill -9.
set -euo pipefail

ACCESS_KEY="${S3_STORE_ACCESS_KEY:-FVDISKTESTACCESSKEY01}"
SECRET_KEY="${S3_STORE_SECRET_KEY:-fvdiskTestSecretKey00000000000000000000001}"
WAIT_SECONDS="${S3_STORE_WAIT:-120}"

log() { echo "s3-store: $*" >&2; }

die() {
  log "$*"
  exit 1
}

install_packages() {
  local missing=()
  for bin in ceph-mon ceph-osd radosgw radosgw-admin monmaptool uuidgen curl; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Ceph (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  local packages=(ceph-mon ceph-osd radosgw ceph-common uuid-runtime curl)
  apt-get install -y -q --no-install-recommends "${packages[@]}" >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${packages[@]}" >&2; }
}

free_port() { # first port in [from, to] nothing listens on
  local port
  for port in $(seq "$1" "$2"); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Runs a daemon in the foreground of a background shell, so its pid is known and no fork races it.
launch() { # name, then the command
  local name="$1"
  shift
  "$@" >>"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/run/$name.pid"
}

running() { # name: whether its pid file names a live process of this directory's cluster
  local pidfile="$DIR/run/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$DIR/ceph.conf"
}

wait_for() { # what, then a command that succeeds once it is ready
  local what="$1" deadline=$((SECONDS + WAIT_SECONDS))
  shift
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "$what not ready after $WAIT_SECONDS s; last log lines:"
      tail -n 20 "$DIR"/log/*.out >&2 || true
      die "giving up"
    fi
    sleep 0.5
  done
}

ceph_cli() { ceph -c "$DIR/ceph.conf" --connect-timeout 10 "$@"; }

write_config() {
  local port="$1" mon_port fsid
  mon_port="$(free_port 3300 3399)" || die "no free port for the mon in 3300-3399"
  fsid="$(uuidgen)"
  mkdir -p "$DIR/mon" "$DIR/osd" "$DIR/run" "$DIR/log"
  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
mon data = $DIR/mon
osd data = $DIR/osd
mon allow pool size one = true
mon warn on pool no redundancy = false
mon osd down out interval = 0
mon data avail crit = 0
paxos propose interval = 0.1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = bluestore
bluestore block create = true
bluestore block size = ${S3_STORE_OSD_SIZE:-4G}
osd memory target = 1073741824
rgw frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF
  echo "$port" >"$DIR/port"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >&2
  ceph-mon -c "$DIR/ceph.conf" --mkfs -i a --monmap "$DIR/monmap" >&2
}

signed_list_buckets() {
  local port
  port="$(cat "$DIR/port")"
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$port/")" = 200 ]
}

start() {
  install_packages
  local fresh=false
  if [ ! -f "$DIR/ceph.conf" ]; then
    write_config "${PORT:-7480}"
    fresh=true
  fi
  running mon || launch mon ceph-mon -f -c "$DIR/ceph.conf" -i a
  wait_for "the mon" ceph_cli mon stat
  if $fresh; then
    local uuid id
    uuid="$(uuidgen)"
    id="$(ceph_cli osd new "$uuid")"
    echo "$id" >"$DIR/osd.id"
    ceph-osd -c "$DIR/ceph.conf" -i "$id" --mkfs --osd-uuid "$uuid" >>"$DIR/log/osd-mkfs.out" 2>&1 \
      || { tail -n 20 "$DIR/log/osd-mkfs.out" >&2; die "OSD mkfs failed"; }
  fi
  running osd || launch osd ceph-osd -f -c "$DIR/ceph.conf" -i "$(cat "$DIR/osd.id")"
  wait_for "the OSD" sh -c "ceph -c '$DIR/ceph.conf' --connect-timeout 10 osd stat | grep -q '1 up'"
  running rgw || launch rgw radosgw -f -c "$DIR/ceph.conf" -n client.rgw.a
  if $fresh; then
    wait_for "the RGW pools" radosgw-admin -c "$DIR/ceph.conf" user list
    radosgw-admin -c "$DIR/ceph.conf" user create --uid=fvdisk --display-name=fvdisk \
      --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >>"$DIR/log/radosgw-admin.out" 2>&1
  fi
  wait_for "S3 (a signed ListBuckets)" signed_list_buckets
  cat >"$DIR/s3.env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$(cat "$DIR/port")
S3_ACCESS_KEY=$ACCESS_KEY
S3_SECRET_KEY=$SECRET_KEY
S3_REGION=us-east-1
EOF
  cat "$DIR/s3.env"
}

stop() {
  local name pid
  for name in rgw osd mon; do
    running "$name" || continue
    pid="$(cat "$DIR/run/$name.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null || true
  done
}

[ $# -ge 2 ] || die "usage: $0 start DIR [PORT] | stop DIR"
COMMAND="$1"
mkdir -p "$2"
DIR="$(cd "$2" && pwd)"
PORT="${3:-}"
case "$COMMAND" in
  start) start ;;
  stop) stop ;;
  *) die "unknown command $COMMAND" ;;
esac
