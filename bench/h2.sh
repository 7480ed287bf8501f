#!/usr/bin/env bash
# HTTP/2 benchmark: pummel --http2 against h2load (nghttp2) on the same target, per generator core.
#
# The target (`pummel sink`, which serves h2c to clients that open with the HTTP/2 preface, or
# nginx with `listen ... http2` for h2c) is pinned to core 0 and every generator to core 1:
# one generator thread, CONNECTIONS connections of STREAMS concurrent streams each, DURATION
# seconds per run, alternating A B A B so drift on the machine hits both tools alike:
#
#   h2load -t1 -c CONNECTIONS -m STREAMS -D DURATION URL
#   pummel run URL --http2 -t 1 -c CONNECTIONS --streams STREAMS -d DURATIONs --json
#
# For each run it prints req/s, the generator's CPU-seconds per 10,000 requests (user + sys,
# from /usr/bin/time) and requests per generator CPU-second (what one saturated generator core
# would do: the figure the goal compares when the target, not the generator, is the limit),
# then pummel's ratios to h2load measured in this same invocation.
#
# Usage: bench/h2.sh [--target sink|nginx] [--duration 8] [--rounds 2] [--connections 1] [--streams 100]
# Needs: h2load (nghttp2-client), /usr/bin/time, taskset, python3; nginx for --target nginx.
# PUMMEL=/path/to/pummel skips the release build and uses that binary. Loopback only; every run
# is bounded.
set -euo pipefail

TARGET=sink
DURATION=8
ROUNDS=2
CONNECTIONS=1
STREAMS=100

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
parse_options --target=TARGET --duration=DURATION --rounds=ROUNDS --connections=CONNECTIONS --streams=STREAMS \
    -- "$@"
bench_start pummel-bench-h2
require_tools h2load taskset python3 /usr/bin/time
setup_pummel
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/"

start_target() {
    case "$TARGET" in
        sink) start_sink "$PORT" --duration 3600s ;;
        nginx) start_nginx "$PORT" http2 ;;
        *) echo "unknown target $TARGET" >&2; exit 2 ;;
    esac
}

start_target
echo "target: $TARGET on core 0 at $URL (h2c); generators on core 1; $CONNECTIONS connection(s) x $STREAMS streams, ${DURATION}s per run, $ROUNDS rounds" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round" >&2
    measure h2load h2load -t1 -c "$CONNECTIONS" -m "$STREAMS" -D "$DURATION" "$URL" >> "$RESULTS"
    measure pummel "$PUMMEL" run "$URL" --http2 -t 1 -c "$CONNECTIONS" --streams "$STREAMS" -d "${DURATION}s" --json \
        >> "$RESULTS"
done

report "$RESULTS" <<'EOF'
print(f"{'tool':<10} {'runs':>4} {'req/s':>9} {'CPU-s/10k':>10} {'req/CPU-s':>10} {'req/s vs h2load':>16} {'req/CPU-s vs h2load':>20}")
for name in rows:
    a = avg(name, "ok")
    ratio_rps = ratio_core = ""
    if "h2load" in rows and name != "h2load":
        b = avg("h2load", "ok")
        ratio_rps, ratio_core = f"{a.rps / b.rps:.2f}x", f"{a.per_core / b.per_core:.2f}x"
    print(f"{name:<10} {a.runs:>4} {a.rps:>9.0f} {a.cpu10k:>10.3f} {a.per_core:>10.0f} {ratio_rps:>16} {ratio_core:>20}")
print("\nGoal: pummel >= 1.0x h2load's requests per generator core (req/CPU-s).")
EOF
