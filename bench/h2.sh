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
# Loopback only; every run is bounded.
set -euo pipefail

TARGET=sink
DURATION=8
ROUNDS=2
CONNECTIONS=1
STREAMS=100
while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --streams) STREAMS=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/pummel-bench-h2.XXXXXX)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/"
TARGET_PID=""

cleanup() {
    if [ -n "$TARGET_PID" ]; then kill "$TARGET_PID" 2>/dev/null || true; wait "$TARGET_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in h2load taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nghttp2-client util-linux python3)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install time)" >&2; exit 2; }

build_pummel

start_target() {
    case "$TARGET" in
        sink)
            taskset -c 0 "$PUMMEL" sink --listen "127.0.0.1:$PORT" --duration 3600s 2> "$WORK/sink.err" &
            TARGET_PID=$!
            ;;
        nginx)
            local nginx_bin
            nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
            [ -x "$nginx_bin" ] || { echo "nginx not found (apt-get install nginx-light)" >&2; exit 2; }
            mkdir -p "$WORK/nginx/logs"
            cat > "$WORK/nginx/nginx.conf" <<EOF2
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log crit;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    http2_max_concurrent_streams 1000;
    server {
        listen 127.0.0.1:$PORT http2 backlog=4096;
        location / { return 200 "ok\n"; }
    }
}
EOF2
            taskset -c 0 "$nginx_bin" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
            TARGET_PID=$!
            ;;
        *) echo "unknown target $TARGET" >&2; exit 2 ;;
    esac
    wait_for_port "$PORT"
}

# measure NAME CMD... : runs CMD pinned to core 1 under /usr/bin/time; prints "name rps requests cpu"
measure() {
    local name=$1; shift
    /usr/bin/time -f "%U %S %M" -o "$WORK/time" timeout 300 taskset -c 1 "$@" > "$WORK/out" 2> "$WORK/err" || true
    python3 - "$name" "$WORK/out" "$WORK/err" "$WORK/time" <<'EOF2'
import json, re, sys
name, out, err, tfile = sys.argv[1:]
text = open(out).read() + open(err).read()
u, s, rss = open(tfile).read().split()[-3:]
cpu = float(u) + float(s)
try:
    if name.startswith("pummel"):
        doc = json.loads(open(out).read())
        rps, requests = doc["rate"]["achieved"], doc["requests"]["ok"]
    else:
        requests = int(re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", text).group(1))
        rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
except Exception as e:
    sys.stderr.write(f"{name}: could not read its output ({e}):\n{text[-2000:]}\n")
    sys.exit(0)
print(f"{name} {rps:.1f} {requests} {cpu:.3f}")
EOF2
}

start_target
echo "target: $TARGET on core 0 at $URL (h2c); generators on core 1; $CONNECTIONS connection(s) x $STREAMS streams, ${DURATION}s per run, $ROUNDS rounds" >&2
RESULTS="$WORK/results"
: > "$RESULTS"
for round in $(seq "$ROUNDS"); do
    echo "round $round" >&2
    measure h2load h2load -t1 -c "$CONNECTIONS" -m "$STREAMS" -D "$DURATION" "$URL" >> "$RESULTS"
    measure pummel "$PUMMEL" run "$URL" --http2 -t 1 -c "$CONNECTIONS" --streams "$STREAMS" -d "${DURATION}s" --json \
        >> "$RESULTS"
done

python3 - "$RESULTS" <<'EOF2'
import sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, rps, requests, cpu = line.split()
    rows[name].append((float(rps), int(requests), float(cpu)))
def avg(name):
    runs = rows[name]
    rps = sum(r[0] for r in runs) / len(runs)
    cpu10k = sum(r[2] / max(r[1], 1) * 1e4 for r in runs) / len(runs)
    per_core = sum(r[1] / max(r[2], 1e-9) for r in runs) / len(runs)
    return rps, cpu10k, per_core
print(f"{'tool':<10} {'runs':>4} {'req/s':>9} {'CPU-s/10k':>10} {'req/CPU-s':>10} {'req/s vs h2load':>16} {'req/CPU-s vs h2load':>20}")
for name in rows:
    rps, cpu10k, per_core = avg(name)
    ratio_rps = ratio_core = ""
    if "h2load" in rows and name != "h2load":
        b = avg("h2load")
        ratio_rps, ratio_core = f"{rps / b[0]:.2f}x", f"{per_core / b[2]:.2f}x"
    print(f"{name:<10} {len(rows[name]):>4} {rps:>9.0f} {cpu10k:>10.3f} {per_core:>10.0f} {ratio_rps:>16} {ratio_core:>20}")
print("\nGoal: pummel >= 1.0x h2load's requests per generator core (req/CPU-s).")
EOF2
