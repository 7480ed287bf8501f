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
# oha and h2load are used when found on PATH. Loopback only; every run is bounded in time.
set -euo pipefail

TARGET=nginx
DURATION=8
ROUNDS=2
SKIP_RSS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --skip-rss) SKIP_RSS=1; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/pummel-bench.XXXXXX)
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

for tool in wrk taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk util-linux python3)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install time)" >&2; exit 2; }

build_pummel

start_target() {
    case "$TARGET" in
        nginx)
            local nginx_bin
            nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
            [ -x "$nginx_bin" ] || { echo "nginx not found (apt-get install nginx-light)" >&2; exit 2; }
            mkdir -p "$WORK/nginx/logs"
            cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log crit;
worker_rlimit_nofile 65536;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location / { return 200 "ok\n"; }
    }
}
EOF
            taskset -c 0 "$nginx_bin" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
            TARGET_PID=$!
            ;;
        sink)
            taskset -c 0 "$PUMMEL" sink --listen "127.0.0.1:$PORT" --duration 3600s &
            TARGET_PID=$!
            ;;
        *) echo "unknown target $TARGET" >&2; exit 2 ;;
    esac
    wait_for_port "$PORT"
}

# measure NAME CMD... : runs CMD pinned to core 1 under /usr/bin/time; prints "name rps requests cpu rss_kib"
measure() {
    local name=$1; shift
    /usr/bin/time -f "%U %S %M" -o "$WORK/time" taskset -c 1 "$@" > "$WORK/out" 2> "$WORK/err" || true
    python3 - "$name" "$WORK/out" "$WORK/err" "$WORK/time" <<'EOF'
import json, re, sys
name, out, err, tfile = sys.argv[1:]
text = open(out).read() + open(err).read()
u, s, rss = open(tfile).read().split()[-3:]
cpu = float(u) + float(s)
rps = requests = None
if name.startswith("pummel"):
    doc = json.loads(open(out).read())
    rps, requests = doc["rate"]["achieved"], doc["requests"]["completed"]
elif name.startswith("wrk"):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
elif name.startswith("oha"):
    doc = json.loads(open(out).read())
    rps = doc["summary"]["requestsPerSec"]
    requests = sum(doc.get("statusCodeDistribution", {}).values())
elif name.startswith("h2load"):
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done", text)
    requests = int(m.group(1))
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
print(f"{name} {rps:.1f} {requests} {cpu:.3f} {rss}")
EOF
}

start_target
echo "target: $TARGET on core 0 at $URL; generators on core 1; ${DURATION}s per run, $ROUNDS rounds" >&2
RESULTS="$WORK/results"
: > "$RESULTS"
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

python3 - "$RESULTS" <<'EOF'
import sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, rps, requests, cpu, rss = line.split()
    rows[name].append((float(rps), int(requests), float(cpu), int(rss)))
def avg(name):
    runs = rows[name]
    rps = sum(r[0] for r in runs) / len(runs)
    cpu10k = sum(r[2] / max(r[1], 1) * 1e4 for r in runs) / len(runs)
    rss = max(r[3] for r in runs) / 1024
    return rps, cpu10k, rss
print(f"{'tool':<14} {'runs':>4} {'req/s':>11} {'CPU-s/10k':>10} {'peak RSS':>10} {'req/s vs wrk':>13} {'CPU vs wrk':>11}")
base = avg("wrk") if "wrk" in rows else None
for name in rows:
    rps, cpu10k, rss = avg(name)
    ratio_rps = ratio_cpu = ""
    if base and "@" not in name:
        ratio_rps, ratio_cpu = f"{rps / base[0]:.2f}x", f"{cpu10k / base[1]:.2f}x"
    print(f"{name:<14} {len(rows[name]):>4} {rps:>11.0f} {cpu10k:>10.4f} {rss:>8.1f}Mi {ratio_rps:>13} {ratio_cpu:>11}")
print("\nGoals: pummel <= 1.10x wrk CPU/request and >= 0.90x its req/s; pummel@5000 <= 0.08 CPU-s/10k;")
print("       pummel@10k peak RSS <= 48 MiB (wrk@10k for reference).")
EOF
