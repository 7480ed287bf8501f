#!/usr/bin/env bash
# The open model's precision and cost: pummel at a fixed rate against h2load's --rps, and the
# highest rate pummel keeps on schedule against wrk's closed-model throughput.
#
# nginx (one worker, `return 200 "ok\n"`) is pinned to core 0 and every generator to core 1,
# one generator thread, alternating the tools so drift hits all alike. Three parts:
#
#   rate     `pummel run -t 1 -r RATE -c 50` against `h2load --h1 -t1 -c50 --rps RATE/50`
#            (h2load's rate is per client), DURATION seconds each: CPU-seconds per 10,000
#            requests and their ratio, pummel's schedule lag p99 and latency p50 − service p50.
#   ceiling  the highest `-r` at which pummel completes >= 99 % of the planned requests with
#            schedule lag p99 <= 1 ms (rates from CEILING_START up by 10 %, 3 s each, one
#            generator thread, a pool of 200 connections), against wrk -t1 -c50's req/s in the
#            same invocation: the ratio is the goal's "open-model ceiling / wrk".
#   wake     what one timer wake-up costs this machine's generator core: the engine's example
#            `wake_cost` (no traffic: the open model's timer woken RATE times a second) on
#            core 1. CPU per wake is the floor of CPU per request of any generator that sends
#            each arrival on time, whatever it does with the answers.
#
# Usage: bench/open.sh [--duration 8] [--rounds 2] [--rate 5000] [--ceiling-start 20000]
#                      [--skip-ceiling]
# Needs: nginx (nginx-light), h2load (nghttp2-client), wrk, /usr/bin/time, taskset, python3.
# PUMMEL=/path/to/pummel skips the release build. Loopback only; every run is bounded.
set -euo pipefail

DURATION=8
ROUNDS=2
RATE=5000
CEILING_START=20000
SKIP_CEILING=0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
parse_options --duration=DURATION --rounds=ROUNDS --rate=RATE --ceiling-start=CEILING_START \
    --skip-ceiling=SKIP_CEILING=1 -- "$@"
bench_start pummel-bench-open
require_tools nginx h2load wrk taskset python3 /usr/bin/time
setup_pummel
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/"
MEASURE_TIMEOUT=$((DURATION + 60))
PER_CLIENT=$((RATE / 50))
FIGURES="$WORK/figures"
: > "$FIGURES"

# pummel_figures NAME: appends "NAME lag_p99_ms latency_p50_ms service_p50_ms completed planned"
# from the pummel --json summary `measure` just left in WORK/out.
pummel_figures() {
    python3 - "$1" "$WORK/out" >> "$FIGURES" <<'EOF'
import json, sys
name, path = sys.argv[1:]
try:
    s = json.load(open(path))
except Exception as e:
    sys.stderr.write(f"{name}: no summary ({e})\n"); sys.exit(0)
lag = s["generator"]["schedule_lag_p99_ms"] or 0.0
lat = (s.get("latency_ms") or {}).get("p50", 0.0)
svc = (s.get("service_time_ms") or {}).get("p50", 0.0)
planned = (s["rate"]["offered"] or 0.0) * s["duration_s"]
print(name, lag, lat, svc, s["requests"]["ok"], round(planned))
EOF
}

start_nginx "$PORT"
echo "nginx on core 0 at $URL; generators on core 1; ${DURATION}s per run, $ROUNDS rounds" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round: fixed rate $RATE req/s over 50 connections" >&2
    measure pummel@rate "$PUMMEL" run "$URL" -t 1 -r "$RATE" -c 50 -d "${DURATION}s" --json >> "$RESULTS"
    pummel_figures pummel@rate
    measure h2load@rate h2load --h1 -t1 -c50 --rps "$PER_CLIENT" -D "$DURATION" "$URL" >> "$RESULTS"
done

if [ "$SKIP_CEILING" = 0 ]; then
    echo "ceiling: wrk's closed-model req/s, then pummel's rates up by 10 %" >&2
    measure wrk@closed wrk -t1 -c50 -d"${DURATION}s" "$URL" >> "$RESULTS"
    rate=$CEILING_START
    for _ in $(seq 40); do
        MEASURE_TIMEOUT=60 measure "ceiling@$rate" "$PUMMEL" run "$URL" -t 1 -r "$rate" -c 200 -d 3s --json >> "$RESULTS"
        pummel_figures "ceiling@$rate"
        kept=$(python3 -c "
import sys
for line in open('$FIGURES'):
    f = line.split()
    if f[0] == 'ceiling@$rate':
        ok = float(f[4]) >= 0.99 * float(f[5]) and float(f[1]) <= 1.0
        print(1 if ok else 0)
")
        [ "$kept" = 1 ] || break
        rate=$(python3 -c "print(int($rate * 1.1))")
    done
fi

echo "wake: the cost of one timer wake-up on core 1" >&2
(cd "$ROOT" && cargo build --release -q -p pummel-engine --example wake_cost)
WAKE=$(taskset -c 1 "$ROOT/target/release/examples/wake_cost" "$RATE" "$DURATION")

report "$RESULTS" "$FIGURES" "$RATE" "$DURATION" "$WAKE" <<'EOF'
figures = collections.defaultdict(list)
for line in open(sys.argv[2]):
    name, lag, lat, svc, completed, planned = line.split()
    figures[name].append(dict(lag=float(lag), lat=float(lat), svc=float(svc), completed=int(completed), planned=int(planned)))
rate, duration = float(sys.argv[3]), float(sys.argv[4])
mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
print(f"{'run':<16} {'runs':>4} {'req/s':>9} {'CPU-s/10k':>10} {'lag p99':>9} {'lat-svc p50':>12}")
for name in ("pummel@rate", "h2load@rate"):
    if name not in rows:
        continue
    a = avg(name, "completed")
    f = figures.get(name, [])
    lag = f"{mean([x['lag'] for x in f]) * 1000:.0f}us" if f else ""
    gap = f"{mean([x['lat'] - x['svc'] for x in f]) * 1000:.0f}us" if f else ""
    print(f"{name:<16} {a.runs:>4} {a.rps:>9.0f} {a.cpu10k:>10.4f} {lag:>9} {gap:>12}")
if "pummel@rate" in rows and "h2load@rate" in rows:
    ratio = avg("pummel@rate", "completed").cpu10k / avg("h2load@rate", "completed").cpu10k
    print(f"\nCPU per request at {rate:.0f} req/s, pummel / h2load: {ratio:.2f}x (goal <= 1.0x, aim 0.8x)")
ceilings = [n for n in figures if n.startswith("ceiling@")]
if ceilings and "wrk@closed" in rows:
    kept = [int(n.split("@")[1]) for n in ceilings
            if figures[n][0]["completed"] >= 0.99 * figures[n][0]["planned"] and figures[n][0]["lag"] <= 1.0]
    wrk = avg("wrk@closed", "completed").rps
    best = max(kept) if kept else 0
    print(f"open-model ceiling (>= 99 % on schedule, lag p99 <= 1 ms): {best} req/s;"
          f" wrk closed model {wrk:.0f} req/s: {best / wrk:.2f}x (goal >= 0.85x)")
    for n in sorted(ceilings, key=lambda n: int(n.split("@")[1])):
        x = figures[n][0]
        print(f"  {n:<16} completed {x['completed']:>8} of {x['planned']:>8}  lag p99 {x['lag']:.3f} ms")
wake = dict(zip(sys.argv[5].split()[::2], sys.argv[5].split()[1::2]))
if "per_wake_us" in wake:
    per = float(wake["per_wake_us"])
    print(f"\none timer wake-up on the generator core: {per:.1f} us of CPU ({wake['wakes']} wakes,"
          f" median {wake['late_p50_us']} us late): {per * 1e4 / 1e6:.4f} CPU-s per 10k requests is the floor"
          f" of sending each arrival on time")
EOF
