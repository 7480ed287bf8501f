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
# are left out). PUMMEL=/path/to/pummel skips the release build and uses that binary.
# Loopback only; every run is bounded.
set -euo pipefail

TARGET=nginx
DURATION=8
ROUNDS=2
HANDSHAKES=10000

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
parse_options --target=TARGET --duration=DURATION --rounds=ROUNDS --handshakes=HANDSHAKES -- "$@"
bench_start pummel-bench-tls
require_tools h2load openssl taskset python3 /usr/bin/time
# oha: from PATH, else where `cargo install oha` puts it.
OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
HAVE_OHA=0
[ -x "$OHA" ] && HAVE_OHA=1
[ "$HAVE_OHA" = 1 ] || echo "oha not found (cargo install oha): its rows and ratios are left out" >&2
setup_pummel
PORT=$(free_port)
PORT_NO_RESUME=$(free_port)
URL="https://127.0.0.1:$PORT/"
URL_NO_RESUME="https://127.0.0.1:$PORT_NO_RESUME/"

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
            make_certs
            CA=$WORK/pki/ca.pem
            start_nginx "$PORT" tls "$WORK/pki/server.pem" "$WORK/pki/server.key" no-resume "$PORT_NO_RESUME"
            ;;
        sink)
            CA=$WORK/sink-ca.pem
            start_sink "$PORT" --tls --tls-cert-out "$CA" --duration 3600s
            ;;
        *) echo "unknown target $TARGET" >&2; exit 2 ;;
    esac
}

start_target
echo "target: $TARGET on core 0 at $URL; generators on core 1; ${DURATION}s / $HANDSHAKES requests per run, $ROUNDS rounds" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round: keep-alive, 50 connections, 1 thread" >&2
    measure h2load h2load --h1 -t1 -c50 -D "$DURATION" "$URL"
    measure pummel "$PUMMEL" run "$URL" -t 1 -c 50 -d "${DURATION}s" --insecure --json
    measure pummel-verified "$PUMMEL" run "$URL" -t 1 -c 50 -d "${DURATION}s" --cacert "$CA" --json
    if [ "$HAVE_OHA" = 1 ]; then
        measure oha "$OHA" -z "${DURATION}s" -c 50 --insecure --no-tui --output-format json "$URL"
    fi
    if [ "$TARGET" = nginx ]; then
        echo "round $round: a new connection and full handshake per request, $HANDSHAKES requests" >&2
        measure h2load@full-hs h2load --h1 -t1 -c50 -n "$HANDSHAKES" -H 'Connection: close' "$URL_NO_RESUME"
        measure pummel@full-hs "$PUMMEL" run "$URL_NO_RESUME" -t 1 -c 50 -n "$HANDSHAKES" --no-keepalive \
            --tls-resume off --insecure --json
        measure pummel-verified@full-hs "$PUMMEL" run "$URL_NO_RESUME" -t 1 -c 50 -n "$HANDSHAKES" --no-keepalive \
            --tls-resume off --cacert "$CA" --json
        if [ "$HAVE_OHA" = 1 ]; then
            measure oha@full-hs "$OHA" -n "$HANDSHAKES" -c 50 --disable-keepalive --insecure --no-tui \
                --output-format json "$URL_NO_RESUME"
        fi
        echo "round $round: a new connection per request, resumed sessions, $HANDSHAKES requests" >&2
        measure h2load@resumed-hs h2load --h1 -t1 -c50 -n "$HANDSHAKES" -H 'Connection: close' "$URL"
        measure pummel@resumed-hs "$PUMMEL" run "$URL" -t 1 -c 50 -n "$HANDSHAKES" --no-keepalive \
            --insecure --json
        if [ "$HAVE_OHA" = 1 ]; then
            measure oha@resumed-hs "$OHA" -n "$HANDSHAKES" -c 50 --disable-keepalive --insecure --no-tui \
                --output-format json "$URL"
        fi
    fi
done >> "$RESULTS"

report "$RESULTS" <<'EOF'
print(f"{'tool':<26} {'runs':>4} {'req/s':>9} {'CPU-s/10k':>10} {'req/CPU-s':>10} {'req/s vs h2load':>16} {'req/CPU-s vs h2load':>20}"
      f" {'req/s vs oha':>13} {'CPU/req vs oha':>15}")
for name in rows:
    a = avg(name, "ok")
    case = name.split("@")[1] if "@" in name else None
    suffix = f"@{case}" if case else ""
    base, oha = "h2load" + suffix, "oha" + suffix
    ratio_rps = ratio_core = oha_rps = oha_cpu = ""
    if base in rows and base != name:
        b = avg(base, "ok")
        ratio_rps, ratio_core = f"{a.rps / b.rps:.2f}x", f"{a.per_core / b.per_core:.2f}x"
    if name.startswith("pummel") and oha in rows:
        o = avg(oha, "ok")
        # CPU per request: pummel's over oha's, below 1 means pummel spends less.
        oha_rps, oha_cpu = f"{a.rps / o.rps:.2f}x", f"{a.cpu10k / o.cpu10k:.2f}x"
    print(f"{name:<26} {a.runs:>4} {a.rps:>9.0f} {a.cpu10k:>10.3f} {a.per_core:>10.0f} {ratio_rps:>16} {ratio_core:>20}"
          f" {oha_rps:>13} {oha_cpu:>15}")
print("\nGoal: pummel >= 1.0x h2load's requests per generator core (req/CPU-s) in each case.")
print("CPU/req vs oha: pummel's CPU per request over oha's (below 1.00x: pummel spends less).")
EOF
