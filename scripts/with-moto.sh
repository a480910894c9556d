#!/usr/bin/env bash
# Runs a command with moto server on a free loopback port, and stops moto when the command ends,
# whether it passed, failed or was interrupted. moto runs under tests/harness/moto_faults.py, which
# adds the one fault moto cannot produce (a DB instance in a terminal status) on request.
#   scripts/with-moto.sh COMMAND [ARGS...]
# With MOTO_HOST=docker moto listens on the Docker bridge's address instead (the host as
# containers reach it, `host.docker.internal` under `--add-host host.docker.internal:host-gateway`),
# for functions that `sam local` runs in containers; MEDIC_CONTAINER_ENDPOINT_URL is then the
# endpoint as a container sees it.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$here/.venv}"
host="${MOTO_HOST:-127.0.0.1}"
if [ "$host" = docker ]; then
  host="$(ip -4 -o addr show docker0 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')"
  [ -n "$host" ] || { echo "with-moto: no docker0 bridge address (is Docker running?)" >&2; exit 1; }
  container_endpoint=yes
fi
port="$("$venv/bin/python" -c "import socket; s=socket.socket(); s.bind(('$host', 0)); print(s.getsockname()[1])")"
log="${MOTO_LOG:-$here/target/moto-$port.log}"
mkdir -p "$(dirname "$log")"
"$venv/bin/python" "$here/tests/harness/moto_faults.py" "$port" "$host" >"$log" 2>&1 &
moto_pid=$!
stop_moto() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; }
trap stop_moto EXIT INT TERM
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://$host:$port/moto-api/data.json', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$moto_pid" 2>/dev/null || { echo "moto server failed to start; see $log" >&2; exit 1; }
  sleep 0.2
done
export AWS_ENDPOINT_URL="http://$host:$port"
if [ -n "${container_endpoint:-}" ]; then export MEDIC_CONTAINER_ENDPOINT_URL="http://host.docker.internal:$port"; fi
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
echo "moto server on $AWS_ENDPOINT_URL (log: $log)" >&2
"$@"
