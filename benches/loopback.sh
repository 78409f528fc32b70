#!/usr/bin/env bash
# End-to-end figures over loopback: a gateway example against the connector example, each
# figure min and median over RUNS runs (3), every run with a fresh connector.
#
#   sends     1,000 sends issued at once after the handshake, each answered (per second,
#             from the handshake to the last result)
#   live      N inbound pushed live (per second, from the handshake to the N-th event)
#   buffered  N inbound through the buffer, each acked by the gateway (same timing)
#
# The timing is the gateway's own `--timings` line. Usage (from the repository root):
#   benches/loopback.sh [gateway|tokio_gateway]...      (default: both)
# Environment: RUNS (3), SENDS (1000), INBOUND (N, 10000).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
SENDS="${SENDS:-1000}"
INBOUND="${INBOUND:-10000}"
gateways=("$@")
[ ${#gateways[@]} -gt 0 ] || gateways=(gateway tokio_gateway)

cargo build --quiet --release --examples
bin=target/release/examples
scratch="$(mktemp -d)"
connector_pid=""
cleanup() {
  if [ -n "$connector_pid" ]; then kill "$connector_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

# One run: a fresh connector with the given flags, the gateway with its own; prints the
# per_second of the gateway's timing line for `stage`.
run_once() {
  local gateway="$1" stage="$2" connector_flags="$3" gateway_flags="$4" url
  # shellcheck disable=SC2086
  "$bin/connector" --listen 127.0.0.1:0 $connector_flags >"$scratch/connector.out" 2>&1 &
  connector_pid=$!
  for _ in $(seq 100); do
    url="$(sed -n 's/^{"listening":"\(.*\)"}$/\1/p' "$scratch/connector.out" | head -n 1)"
    [ -n "$url" ] && break
    sleep 0.05
  done
  # shellcheck disable=SC2086
  "$bin/$gateway" --url "$url" --identity discord:1 --timings --timeout 60 $gateway_flags \
    >"$scratch/gateway.out" 2>"$scratch/gateway.err" || {
    echo "$gateway failed: $(cat "$scratch/gateway.err")" >&2
    exit 1
  }
  kill "$connector_pid" 2>/dev/null || true
  wait "$connector_pid" 2>/dev/null || true
  connector_pid=""
  grep "\"event\":\"timing\"" "$scratch/gateway.out" | grep "\"stage\":\"$stage\"" |
    sed -n 's/.*"per_second":\([0-9.]*\).*/\1/p'
}

# min and median of RUNS runs, as "min median (all runs)".
figure() {
  local values=() v
  for _ in $(seq "$RUNS"); do
    v="$(run_once "$@")"
    values+=("${v%.*}")
  done
  printf '%s\n' "${values[@]}" | sort -n | awk -v all="${values[*]}" '
    { v[NR] = $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
          printf "%d %d (%s)\n", v[1], m, all }'
}

echo "runs=$RUNS sends=$SENDS inbound=$INBOUND; per second: min median (all runs)"
for gateway in "${gateways[@]}"; do
  echo "$gateway sends:    $(figure "$gateway" results "" "--sends $SENDS")"
  echo "$gateway live:     $(figure "$gateway" inbound "--push-inbound $INBOUND" "--wait-inbound $INBOUND")"
  echo "$gateway buffered: $(figure "$gateway" inbound "--push-inbound $INBOUND --buffered-every 1" "--wait-inbound $INBOUND")"
done
