#!/usr/bin/env bash
# A three-node jobd cluster on 127.0.0.1, for trying failover by hand.
#
#   deploy/local-cluster.sh start|stop|status|kill-leader
#
# Node i (1..3) serves 9P on JOBD_BASE_PORT+i-1 (default 5640, 5641, 5642)
# and Raft on JOBD_BASE_PORT+100+i-1 (5740, 5741, 5742). Data, logs and pid
# files live under JOBD_CLUSTER_DIR (default ./jobd-cluster), one directory
# per node. JOBD_BIN is the jobd binary (default target/release/jobd, else
# jobd on PATH). `stop` ends only the processes this script started, by
# the pid files it wrote.
set -euo pipefail

BASE=${JOBD_BASE_PORT:-5640}
DIR=${JOBD_CLUSTER_DIR:-./jobd-cluster}
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${JOBD_BIN:-$here/target/release/jobd}
[ -x "$BIN" ] || BIN=$(command -v jobd || true)
# stop needs only the pid files, so it works even if the binary is gone.
if [ "${1:-}" != stop ] && ! { [ -n "$BIN" ] && [ -x "$BIN" ]; }; then
    echo "local-cluster: no jobd binary; cargo build --release, or set JOBD_BIN" >&2
    exit 1
fi

fs_port() { echo $((BASE + $1 - 1)); }
raft_port() { echo $((BASE + 100 + $1 - 1)); }
peers="1=127.0.0.1:$(raft_port 1),2=127.0.0.1:$(raft_port 2),3=127.0.0.1:$(raft_port 3)"

# The pid in node i's pid file, if that process is still our jobd.
running_pid() {
  local f="$DIR/n$1/jobd.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "--dbdir $DIR/n$1/db" || return 1
  echo "$pid"
}

ctl() { "$BIN" 9p --addr "127.0.0.1:$(fs_port "$1")" read /ctl 2>/dev/null; }

leader() {
  local i l
  for i in 1 2 3; do
    running_pid "$i" >/dev/null || continue
    l=$(ctl "$i" | awk '$1 == "leader" { print $2 }')
    [ -n "$l" ] && [ "$l" != none ] && { echo "$l"; return 0; }
  done
  return 1
}

start() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  local i
  for i in 1 2 3; do
    if running_pid "$i" >/dev/null; then echo "node $i already running"; continue; fi
    mkdir -p "$DIR/n$i"
    nohup "$BIN" --id "$i" --peers "$peers" --initial-cluster-state new \
      --dbdir "$DIR/n$i/db" --fsaddr "127.0.0.1:$(fs_port "$i")" --raftaddr "127.0.0.1:$(raft_port "$i")" \
      >>"$DIR/n$i/jobd.log" 2>&1 </dev/null &
    echo $! > "$DIR/n$i/jobd.pid"
    echo "node $i: pid $!, 9P 127.0.0.1:$(fs_port "$i"), raft 127.0.0.1:$(raft_port "$i"), log $DIR/n$i/jobd.log"
  done
  local deadline=$((SECONDS + 30))
  until leader >/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "local-cluster: no leader after 30 s; see the logs" >&2; exit 1; }
    sleep 0.2
  done
  echo "leader: node $(leader)"
}

stop() {
  local i pid
  for i in 1 2 3; do
    if pid=$(running_pid "$i"); then
      kill -TERM "$pid"
      local deadline=$((SECONDS + 15))
      while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
      echo "node $i stopped"
    fi
    rm -f "$DIR/n$i/jobd.pid"
  done
}

status() {
  local i pid
  for i in 1 2 3; do
    if pid=$(running_pid "$i"); then
      echo "node $i: running (pid $pid) $(ctl "$i" | awk '$1 ~ /^(leader|term|applied)$/ { printf "%s %s ", $1, $2 }')"
    else
      echo "node $i: stopped"
    fi
  done
}

kill_leader() {
  local l pid
  l=$(leader) || { echo "local-cluster: no leader" >&2; exit 1; }
  pid=$(running_pid "$l") || { echo "local-cluster: leader $l is not ours" >&2; exit 1; }
  kill -KILL "$pid"
  rm -f "$DIR/n$l/jobd.pid"
  echo "killed node $l (pid $pid)"
}

DIR=$(mkdir -p "$DIR" && cd "$DIR" && pwd)
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  kill-leader) kill_leader ;;
  *) echo "usage: $0 start|stop|status|kill-leader" >&2; exit 2 ;;
esac
