#!/usr/bin/env bash
# A real Prometheus Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1 and a free port, for the alerting
# tests and demos. Idempotent: `up` reuses a running one that answers, else starts a new one; it prints its URL.
#
#   bash test/lab/alertmanager.sh up [DIR] [WEBHOOK_URL]   # DIR default $CLONEBOX_LAB_DIR/alertmanager (.lab/…)
#   bash test/lab/alertmanager.sh down [DIR]
#
# WEBHOOK_URL: Alertmanager forwards its notifications there (group_wait 0s, group_interval 1s), so a test can
# see what Alertmanager itself would send on; without it alerts go to a receiver that sends nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmd=${1:-up}
dir=${2:-${CLONEBOX_LAB_DIR:-$PWD/.lab}/alertmanager}
webhook=${3:-}
bin=$(command -v prometheus-alertmanager || command -v alertmanager || true)
if [[ -z $bin ]]; then
  echo "clonebox: Alertmanager is not installed; run scripts/install-deps.sh (Debian package prometheus-alertmanager)" >&2
  exit 1
fi
mkdir -p "$dir"
pidfile=$dir/alertmanager.pid
urlfile=$dir/url

running() {
  [[ -f $pidfile && -f $urlfile ]] || return 1
  local pid; pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == prometheus-ale* || $(cat "/proc/$pid/comm" 2>/dev/null) == alertmanager ]] || return 1
  curl -fsS -m 2 "$(cat "$urlfile")/-/ready" >/dev/null 2>&1
}

stop() {
  if [[ -f $pidfile ]]; then
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == prometheus-ale* || $(cat "/proc/$pid/comm" 2>/dev/null) == alertmanager ]]; then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile" "$urlfile"
  fi
}

case $cmd in
  down) stop; exit 0 ;;
  up) ;;
  *) echo "usage: $0 up|down [DIR] [WEBHOOK_URL]" >&2; exit 2 ;;
esac

want_hook=$(cat "$dir/webhook" 2>/dev/null || true)
if running && [[ $want_hook == "$webhook" ]]; then
  cat "$urlfile"
  exit 0
fi
stop

if [[ -n $webhook ]]; then
  receivers="receivers:
  - name: hook
    webhook_configs:
      - url: '$webhook'
        send_resolved: true"
  receiver=hook
else
  receivers="receivers:
  - name: none"
  receiver=none
fi
cat >"$dir/alertmanager.yml" <<YAML
route:
  receiver: $receiver
  group_by: ['alertname', 'vm', 'check']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
$receivers
YAML
printf '%s' "$webhook" >"$dir/webhook"

for attempt in 1 2 3; do
  port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  # No cluster (HA) listener: nothing but the API on loopback.
  nohup "$bin" --config.file="$dir/alertmanager.yml" --storage.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= --log.level=warn \
    >"$dir/alertmanager.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "http://127.0.0.1:$port" >"$urlfile"
  for _ in $(seq 100); do
    if curl -fsS -m 1 "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
      cat "$urlfile"
      exit 0
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.2
  done
  stop
  echo "clonebox: Alertmanager did not start on port $port (attempt $attempt): $(tail -3 "$dir/alertmanager.log" 2>/dev/null)" >&2
done
exit 1
