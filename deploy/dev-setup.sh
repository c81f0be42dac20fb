#!/usr/bin/env bash
# The README's set-up: installs everything the test command and the
# benchmarks need beyond a Rust toolchain, as listed in deploy/dev-tools.txt.
# Debian 12 or Ubuntu; run as root or with sudo. Idempotent: what is already
# there is left alone.
#
#   deploy/dev-setup.sh           install what is missing
#   deploy/dev-setup.sh --check   say what is missing; exit 1 if anything is
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list=$here/dev-tools.txt
# pip tools get their own virtual environment (Debian's Python refuses
# system-wide pip installs) and a link on PATH.
venv=${JOBD_DEV_VENV:-/opt/jobd-dev/venv}
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

missing_debs=()
missing_pips=()
while read -r tool source _; do
  case "$tool" in ''|'#'*) continue ;; esac
  if [ "$tool" = - ]; then
    dpkg -s "$source" >/dev/null 2>&1 && continue
  else
    command -v "$tool" >/dev/null 2>&1 && continue
  fi
  case "$source" in
    pip:*) missing_pips+=("${source#pip:}:$tool") ;;
    *) missing_debs+=("$source") ;;
  esac
done < "$list"

if [ $check = 1 ]; then
  [ ${#missing_debs[@]} -eq 0 ] && [ ${#missing_pips[@]} -eq 0 ] && { echo "dev-setup: everything in deploy/dev-tools.txt is installed"; exit 0; }
  echo "dev-setup: missing: ${missing_debs[*]} ${missing_pips[*]%%:*} (run deploy/dev-setup.sh)"
  exit 1
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
if [ ${#missing_debs[@]} -gt 0 ]; then
  # Each package once, in a stable order.
  mapfile -t debs < <(printf '%s\n' "${missing_debs[@]}" | sort -u)
  echo "dev-setup: apt-get install ${debs[*]}"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >/dev/null
fi
for entry in ${missing_pips[@]+"${missing_pips[@]}"}; do
  req=${entry%:*}
  tool=${entry##*:}
  echo "dev-setup: pip install $req (into $venv, linked as /usr/local/bin/$tool)"
  [ -x "$venv/bin/pip" ] || $sudo python3 -m venv "$venv"
  $sudo "$venv/bin/pip" install -q "$req"
  $sudo ln -sf "$venv/bin/$tool" "/usr/local/bin/$tool"
done
exec bash "$0" --check
