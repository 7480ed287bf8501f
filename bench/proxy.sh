#!/usr/bin/env bash
# What `pummel proxy` with no toxic costs a request: pummel (closed model, fixed connections)
# against nginx directly and through the proxy, in the same invocation, alternating direct and
# proxied runs so that drift on the machine hits both alike.
#
# nginx (one worker, `return 200 "ok\n"`) is pinned to core 0. The generator (pummel run -t 1)
# is pinned to core 1, and so is the proxy (pummel proxy -t 1): on a 2-core machine the proxy
# has to share a core with something, and sharing the generator's core keeps nginx's core the
# same in both runs. So a proxied run's generator gets less CPU than a direct one's: the
# req/s ratio is the proxy's ceiling on the core it shares, a lower bound of what it does on a
# core of its own. Two loads:
#
#   c1    one connection: each request waits for the previous answer; latency p50/p99 added by
#         the proxy (the goal: <= 100 us at p50, toxiproxy's own claim).
#   cN    CONNECTIONS connections (default 50): the req/s ceiling through the proxy against
#         direct (the goal: >= 0.5x), and the latency under that load.
#
# Usage: bench/proxy.sh [--duration 5] [--rounds 2] [--connections 50]
# Needs: nginx (nginx-light), /usr/bin/time, taskset, python3. PUMMEL=/path/to/pummel skips
# the release build. Loopback only; every run is bounded in time.
set -euo pipefail

DURATION=5
ROUNDS=2
CONNECTIONS=50

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
parse_options --duration=DURATION --rounds=ROUNDS --connections=CONNECTIONS -- "$@"
bench_start pummel-bench-proxy
require_tools nginx taskset python3 /usr/bin/time
setup_pummel
PORT=$(free_port)
PROXY_PORT=$(free_port)
DIRECT="http://127.0.0.1:$PORT/"
PROXIED="http://127.0.0.1:$PROXY_PORT/"
MEASURE_TIMEOUT=$((DURATION + 60))
FIGURES="$WORK/figures"
: > "$FIGURES"

# latency_figures NAME: appends "NAME p50_ms p99_ms req_s" from the pummel --json summary
# `measure` just left in WORK/out.
latency_figures() {
    python3 - "$1" "$WORK/out" >> "$FIGURES" <<'EOF'
import json, sys
name, path = sys.argv[1:]
try:
    s = json.load(open(path))
except Exception as e:
    sys.stderr.write(f"{name}: no summary ({e})\n"); sys.exit(0)
lat = s.get("latency_ms") or {}
print(name, lat.get("p50", 0.0), lat.get("p99", 0.0), s["rate"]["achieved"])
EOF
}

start_nginx "$PORT"
taskset -c 1 "$PUMMEL" proxy --proxy "web=127.0.0.1:$PROXY_PORT,127.0.0.1:$PORT" -t 1 --quiet \
    --duration 3600s > "$WORK/proxy.out" 2> "$WORK/proxy.err" &
track_target $!
wait_for_port "$PROXY_PORT" "$WORK/proxy.err"
echo "nginx on core 0 at $DIRECT; pummel proxy on core 1 at $PROXIED; generator on core 1;" \
    "${DURATION}s per run, $ROUNDS rounds" >&2
for round in $(seq "$ROUNDS"); do
    for load in 1 "$CONNECTIONS"; do
        echo "round $round: $load connection(s), direct then through the proxy" >&2
        measure "direct@c$load" "$PUMMEL" run "$DIRECT" -t 1 -c "$load" -d "${DURATION}s" --json >> "$RESULTS"
        latency_figures "direct@c$load"
        measure "proxy@c$load" "$PUMMEL" run "$PROXIED" -t 1 -c "$load" -d "${DURATION}s" --json >> "$RESULTS"
        latency_figures "proxy@c$load"
    done
done

report "$RESULTS" "$FIGURES" "$CONNECTIONS" <<'EOF'
figures = collections.defaultdict(list)
for line in open(sys.argv[2]):
    name, p50, p99, rps = line.split()
    figures[name].append(dict(p50=float(p50), p99=float(p99), rps=float(rps)))
mean = lambda name, key: sum(f[key] for f in figures[name]) / len(figures[name])
print(f"{'run':<12} {'runs':>4} {'req/s':>10} {'p50':>10} {'p99':>10} {'bad':>5}")
for name in rows:
    a = avg(name, "completed")
    if name in figures:
        print(f"{name:<12} {a.runs:>4} {mean(name, 'rps'):>10.0f} {mean(name, 'p50') * 1000:>8.0f}us "
              f"{mean(name, 'p99') * 1000:>8.0f}us {a.bad:>5}")
print()
for load in ("c1", f"c{sys.argv[3]}"):
    d, p = f"direct@{load}", f"proxy@{load}"
    if d in figures and p in figures:
        print(f"{load}: the proxy adds {(mean(p, 'p50') - mean(d, 'p50')) * 1000:.0f} us at p50, "
              f"{(mean(p, 'p99') - mean(d, 'p99')) * 1000:.0f} us at p99; req/s {mean(p, 'rps') / mean(d, 'rps'):.2f}x direct")
print("\nGoals: <= 100 us added at p50 (c1), >= 0.5x direct req/s (the proxy sharing the generator's core).")
EOF
