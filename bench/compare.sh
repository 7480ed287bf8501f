#!/usr/bin/env bash
# Side-by-side benchmark of pummel against wrk (and oha / h2load where installed).
#
# The target (nginx, or pummel's own sink) is pinned to core 0 and every generator to core 1,
# one generator thread, 50 keep-alive connections, DURATION seconds each, alternating A B A B
# so drift on the machine hits every tool alike. For each run it prints req/s and the
# generator's CPU-seconds per 10,000 requests (user + sys, from /usr/bin/time), then the ratios
# to wrk measured in this same invocation. It also measures CPU per request at a fixed rate and
# peak RSS with 10,000 connections.
#
# Usage: bench/compare.sh [--target nginx|sink] [--duration 8] [--rounds 2] [--skip-rss]
# Needs: wrk, /usr/bin/time, taskset, python3; nginx for --target nginx (Debian's nginx-light);
# oha and h2load are used when found on PATH. PUMMEL=/path/to/pummel skips the release build and
# uses that binary. Loopback only; every run is bounded in time.
set -euo pipefail

TARGET=nginx
DURATION=8
ROUNDS=2
SKIP_RSS=0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
parse_options --target=TARGET --duration=DURATION --rounds=ROUNDS --skip-rss=SKIP_RSS=1 -- "$@"
bench_start pummel-bench
require_tools wrk taskset python3 /usr/bin/time
setup_pummel
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/"
# Every run is bounded by its own duration; this bounds one that hangs.
MEASURE_TIMEOUT=$((DURATION + 60))

start_target() {
    case "$TARGET" in
        nginx) start_nginx "$PORT" ;;
        sink) start_sink "$PORT" --duration 3600s ;;
        *) echo "unknown target $TARGET" >&2; exit 2 ;;
    esac
}

start_target
echo "target: $TARGET on core 0 at $URL; generators on core 1; ${DURATION}s per run, $ROUNDS rounds" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round: keep-alive, 50 connections, 1 thread" >&2
    measure wrk wrk -t1 -c50 -d"${DURATION}s" "$URL" >> "$RESULTS"
    measure pummel "$PUMMEL" run "$URL" -t 1 -c 50 -d "${DURATION}s" --json >> "$RESULTS"
    if command -v oha >/dev/null; then
        measure oha oha -z "${DURATION}s" -c 50 --no-tui --output-format json "$URL" >> "$RESULTS"
    fi
    echo "round $round: fixed rate 5000 req/s" >&2
    measure pummel@5000 "$PUMMEL" run "$URL" -t 1 -r 5000 -d "${DURATION}s" --json >> "$RESULTS"
    if command -v oha >/dev/null; then
        measure oha@5000 oha -z "${DURATION}s" -c 50 -q 5000 --no-tui --output-format json "$URL" >> "$RESULTS"
    fi
    if command -v h2load >/dev/null; then
        # h2load's --rps is per client: 50 clients x 100 req/s = 5000 req/s.
        measure h2load@5000 h2load --h1 -t1 -c50 --rps 100 -D "$DURATION" "$URL" >> "$RESULTS"
    fi
done
if [ "$SKIP_RSS" = 0 ]; then
    echo "peak RSS with 10,000 connections" >&2
    measure wrk@10k wrk -t1 -c10000 -d5s "$URL" >> "$RESULTS"
    measure pummel@10k "$PUMMEL" run "$URL" -t 1 -c 10000 -d 5s --json >> "$RESULTS"
    if command -v oha >/dev/null; then
        measure oha@10k oha -z 5s -c 10000 --no-tui --output-format json "$URL" >> "$RESULTS"
    fi
fi

report "$RESULTS" <<'EOF'
print(f"{'tool':<14} {'runs':>4} {'req/s':>11} {'CPU-s/10k':>10} {'peak RSS':>10} {'req/s vs wrk':>13} {'CPU vs wrk':>11}")
base = avg("wrk", "completed") if "wrk" in rows else None
for name in rows:
    a = avg(name, "completed")
    ratio_rps = ratio_cpu = ""
    if base and "@" not in name:
        ratio_rps, ratio_cpu = f"{a.rps / base.rps:.2f}x", f"{a.cpu10k / base.cpu10k:.2f}x"
    print(f"{name:<14} {a.runs:>4} {a.rps:>11.0f} {a.cpu10k:>10.4f} {a.rss_mib:>8.1f}Mi {ratio_rps:>13} {ratio_cpu:>11}")
print("\nGoals: pummel <= 1.10x wrk CPU/request and >= 0.90x its req/s; pummel@5000 <= 0.08 CPU-s/10k;")
print("       pummel@10k peak RSS <= 48 MiB (wrk@10k for reference).")
EOF
