#!/usr/bin/env bash
# HTTPS benchmark: pummel against h2load --h1 (and oha when on PATH) on the same TLS target.
#
# The target (nginx with an ECDSA P-256 certificate this script makes with openssl, or
# `pummel sink --tls`) is pinned to core 0 and every generator to core 1: one generator thread,
# 50 connections, alternating A B A B so drift hits every tool alike. Three cases:
#
#   keep-alive    50 connections for DURATION seconds each (one handshake per connection).
#   full-hs       a new connection and a *full* TLS handshake per request, HANDSHAKES requests:
#                 pummel --no-keepalive --tls-resume off; h2load --h1 -H 'Connection: close'
#                 (h2load reconnects after each answer; it has no way to turn its session
#                 resumption off, so the nginx target refuses resumption on a second port:
#                 ssl_session_tickets off; ssl_session_cache off); oha --disable-keepalive.
#   resumed-hs    the same against the port that allows resumption (pummel's default
#                 --tls-resume on; h2load and oha resume on their own).
#
# For each run it prints req/s, the generator's CPU-seconds per 10,000 requests (user + sys,
# from /usr/bin/time) and requests per generator CPU-second (what one saturated generator core
# would do: the figure the goal compares when the target, not the generator, is the limit),
# then pummel's ratios to h2load and to oha measured in this same invocation (to oha: req/s and
# CPU per request). pummel runs with --insecure because h2load and oha do not verify
# certificates; "pummel-verified" adds verification (--cacert) to show its cost. The
# full/resumed handshake cases need --target nginx (the sink always offers resumption, which
# h2load would take).
#
# Usage: bench/tls.sh [--target nginx|sink] [--duration 8] [--rounds 2] [--handshakes 10000]
# Needs: h2load (nghttp2-client), openssl, /usr/bin/time, taskset, python3; nginx for
# --target nginx; oha (on PATH or in ~/.cargo/bin: `cargo install oha`; without it, its rows
# are left out). Loopback only; every run is bounded.
set -euo pipefail

TARGET=nginx
DURATION=8
ROUNDS=2
HANDSHAKES=10000
while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --handshakes) HANDSHAKES=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/pummel-bench-tls.XXXXXX)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
PORT=$(free_port)
PORT_NO_RESUME=$(free_port)
URL="https://127.0.0.1:$PORT/"
URL_NO_RESUME="https://127.0.0.1:$PORT_NO_RESUME/"
TARGET_PID=""

cleanup() {
    if [ -n "$TARGET_PID" ]; then kill "$TARGET_PID" 2>/dev/null || true; wait "$TARGET_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in h2load openssl taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nghttp2-client openssl util-linux python3)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install time)" >&2; exit 2; }
# oha: from PATH, else where `cargo install oha` puts it.
OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
HAVE_OHA=0
[ -x "$OHA" ] && HAVE_OHA=1
[ "$HAVE_OHA" = 1 ] || echo "oha not found (cargo install oha): its rows and ratios are left out" >&2

build_pummel

# A CA and a server certificate it signed, ECDSA P-256, for 127.0.0.1 and localhost.
make_certs() {
    local d=$WORK/pki
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=pummel bench CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$d/ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/ext" -out "$d/server.pem" 2>/dev/null
}

CA=""
start_target() {
    case "$TARGET" in
        nginx)
            local nginx_bin
            nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
            [ -x "$nginx_bin" ] || { echo "nginx not found (apt-get install nginx-light)" >&2; exit 2; }
            make_certs
            CA=$WORK/pki/ca.pem
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
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $WORK/pki/server.pem;
    ssl_certificate_key $WORK/pki/server.key;
    server {
        listen 127.0.0.1:$PORT ssl backlog=4096;
        ssl_session_cache shared:SSL:10m;
        location / { return 200 "ok\n"; }
    }
    server {
        listen 127.0.0.1:$PORT_NO_RESUME ssl backlog=4096;
        ssl_session_tickets off;
        ssl_session_cache off;
        location / { return 200 "ok\n"; }
    }
}
EOF
            taskset -c 0 "$nginx_bin" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
            TARGET_PID=$!
            ;;
        sink)
            CA=$WORK/sink-ca.pem
            taskset -c 0 "$PUMMEL" sink --listen "127.0.0.1:$PORT" --tls --tls-cert-out "$CA" --duration 3600s \
                2> "$WORK/sink.err" &
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
    python3 - "$name" "$WORK/out" "$WORK/err" "$WORK/time" <<'EOF'
import json, re, sys
name, out, err, tfile = sys.argv[1:]
text = open(out).read() + open(err).read()
u, s, rss = open(tfile).read().split()[-3:]
cpu = float(u) + float(s)
try:
    if name.startswith("pummel"):
        doc = json.loads(open(out).read())
        rps, requests = doc["rate"]["achieved"], doc["requests"]["ok"]
    elif name.startswith("oha"):
        doc = json.loads(open(out).read())
        rps = doc["summary"]["requestsPerSec"]
        requests = sum(doc.get("statusCodeDistribution", {}).values())
    elif name.startswith("h2load"):
        requests = int(re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", text).group(1))
        rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
except Exception as e:
    sys.stderr.write(f"{name}: could not read its output ({e}):\n{text[-2000:]}\n")
    sys.exit(0)
print(f"{name} {rps:.1f} {requests} {cpu:.3f}")
EOF
}

start_target
echo "target: $TARGET on core 0 at $URL; generators on core 1; ${DURATION}s / $HANDSHAKES requests per run, $ROUNDS rounds" >&2
RESULTS="$WORK/results"
: > "$RESULTS"
for round in $(seq "$ROUNDS"); do
    echo "round $round: keep-alive, 50 connections, 1 thread" >&2
    measure h2load h2load --h1 -t1 -c50 -D "$DURATION" "$URL" >> "$RESULTS"
    measure pummel "$PUMMEL" run "$URL" -t 1 -c 50 -d "${DURATION}s" --insecure --json >> "$RESULTS"
    measure pummel-verified "$PUMMEL" run "$URL" -t 1 -c 50 -d "${DURATION}s" --cacert "$CA" --json >> "$RESULTS"
    if [ "$HAVE_OHA" = 1 ]; then
        measure oha "$OHA" -z "${DURATION}s" -c 50 --insecure --no-tui --output-format json "$URL" >> "$RESULTS"
    fi
    if [ "$TARGET" = nginx ]; then
        echo "round $round: a new connection and full handshake per request, $HANDSHAKES requests" >&2
        measure h2load@full-hs h2load --h1 -t1 -c50 -n "$HANDSHAKES" -H 'Connection: close' "$URL_NO_RESUME" >> "$RESULTS"
        measure pummel@full-hs "$PUMMEL" run "$URL_NO_RESUME" -t 1 -c 50 -n "$HANDSHAKES" --no-keepalive \
            --tls-resume off --insecure --json >> "$RESULTS"
        measure pummel-verified@full-hs "$PUMMEL" run "$URL_NO_RESUME" -t 1 -c 50 -n "$HANDSHAKES" --no-keepalive \
            --tls-resume off --cacert "$CA" --json >> "$RESULTS"
        if [ "$HAVE_OHA" = 1 ]; then
            measure oha@full-hs "$OHA" -n "$HANDSHAKES" -c 50 --disable-keepalive --insecure --no-tui \
                --output-format json "$URL_NO_RESUME" >> "$RESULTS"
        fi
        echo "round $round: a new connection per request, resumed sessions, $HANDSHAKES requests" >&2
        measure h2load@resumed-hs h2load --h1 -t1 -c50 -n "$HANDSHAKES" -H 'Connection: close' "$URL" >> "$RESULTS"
        measure pummel@resumed-hs "$PUMMEL" run "$URL" -t 1 -c 50 -n "$HANDSHAKES" --no-keepalive \
            --insecure --json >> "$RESULTS"
        if [ "$HAVE_OHA" = 1 ]; then
            measure oha@resumed-hs "$OHA" -n "$HANDSHAKES" -c 50 --disable-keepalive --insecure --no-tui \
                --output-format json "$URL" >> "$RESULTS"
        fi
    fi
done

python3 - "$RESULTS" <<'EOF'
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
print(f"{'tool':<26} {'runs':>4} {'req/s':>9} {'CPU-s/10k':>10} {'req/CPU-s':>10} {'req/s vs h2load':>16} {'req/CPU-s vs h2load':>20}"
      f" {'req/s vs oha':>13} {'CPU/req vs oha':>15}")
for name in rows:
    rps, cpu10k, per_core = avg(name)
    case = name.split("@")[1] if "@" in name else None
    suffix = f"@{case}" if case else ""
    base, oha = "h2load" + suffix, "oha" + suffix
    ratio_rps = ratio_core = oha_rps = oha_cpu = ""
    if base in rows and base != name:
        b = avg(base)
        ratio_rps, ratio_core = f"{rps / b[0]:.2f}x", f"{per_core / b[2]:.2f}x"
    if name.startswith("pummel") and oha in rows:
        o = avg(oha)
        # CPU per request: pummel's over oha's, below 1 means pummel spends less.
        oha_rps, oha_cpu = f"{rps / o[0]:.2f}x", f"{cpu10k / o[1]:.2f}x"
    print(f"{name:<26} {len(rows[name]):>4} {rps:>9.0f} {cpu10k:>10.3f} {per_core:>10.0f} {ratio_rps:>16} {ratio_core:>20}"
          f" {oha_rps:>13} {oha_cpu:>15}")
print("\nGoal: pummel >= 1.0x h2load's requests per generator core (req/CPU-s) in each case.")
print("CPU/req vs oha: pummel's CPU per request over oha's (below 1.00x: pummel spends less).")
EOF
