#!/usr/bin/env bash
# Plan-file benchmarks: memory of held sessions, and CPU per plan request against quick mode.
#
# Part "sessions" (memory): `pummel sink` on core 0 (a fresh one per run, so no run inherits
# another's sockets), pummel on core 1 running one of two plans written to a temp dir:
#
#   http   users hold one keep-alive connection each: flow = [ request "/", think 20s ]
#   ws     users hold one WebSocket session each: flow = [ ws_connect "/ws", think 1h ]
#
# each with users = USERS and a baseline users = 10, ramp_up RAMP seconds, duration DURATION
# seconds (the run's end cuts the think). With the defaults (5 s, 30 s) every HTTP user sends 2
# requests and holds its connection idle for 20 s between them. pummel's RSS is sampled every
# second from /proc/PID/status (VmRSS) and its peak is taken from /usr/bin/time (%M). It prints,
# per run: peak RSS, RSS at the end of the ramp-up, the mean and max in the second half of the
# run, and the RSS just before the end; then per held session = (RSS(USERS) - RSS(10)) /
# (USERS - 10), from the peak and from the second-half mean, and the growth from the end of the
# ramp-up to the second half ("flat over the run's length"), against the same growth with 10
# users. To show the sessions really are held, it also prints the connections pummel opened
# (from its JSON summary: 10,000 means the second request reused the idle connection) and the
# median number of fds pummel had open in the second half. The sink's RSS is sampled too.
#
# Part "cpu": nginx (one worker, `return 200 "ok\n"` on every path) pinned to core 0, pummel on
# core 1 with one thread, 50 connections/users, CPU_DURATION seconds per run, alternating the
# variants in every round so drift hits them alike:
#
#   quick      pummel run http://127.0.0.1:PORT/items/1 -c 50 -d 8s -t 1 --json
#   plan       a plan: users = 50, duration 8s,
#              flow = [ { request = { path = "/items/{{ random_int(1, 10000000) }}",
#                                     check = [ { status = "200-404" } ] } } ]
#   plan-static, plan-template, plan-check (with --breakdown): the plan with a fixed path and
#              no check, with the template only, with the check only: where the difference goes.
#
# For each it prints req/s and CPU-seconds per 10,000 requests (user + sys from /usr/bin/time),
# then the ratio of each plan variant's CPU per request to quick mode's (goal: plan <= 1.3x).
#
# Usage: bench/plans.sh [--part sessions|cpu|all] [--users 10000] [--ramp 5] [--duration 30]
#                       [--threads 1] [--rounds 2] [--cpu-duration 8] [--breakdown] [--samples DIR]
# --samples DIR keeps the per-second RSS samples ("t pid rss_kib fds" lines, pummel's and the
# sink's) of every sessions run. PUMMEL=/path/to/pummel skips the release build and uses that
# binary (the script runs a copy of it either way, so a rebuild meanwhile changes nothing).
# Needs: /usr/bin/time, taskset, python3; nginx for the cpu part (Debian's nginx-light).
# The open-file limit is raised to the hard limit (pummel and the sink each need USERS + a few).
# Loopback only; every run is bounded in time.
set -euo pipefail

PART=all
USERS=10000
BASE_USERS=10
RAMP=5
DURATION=30
THREADS=1
ROUNDS=2
CPU_DURATION=8
BREAKDOWN=0
SAMPLES_DIR=""

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
parse_options --part=PART --users=USERS --ramp=RAMP --duration=DURATION --threads=THREADS --rounds=ROUNDS \
    --cpu-duration=CPU_DURATION --breakdown=BREAKDOWN=1 --samples=SAMPLES_DIR -- "$@"
case "$PART" in sessions|cpu|all) ;; *) echo "--part must be sessions, cpu or all" >&2; exit 2 ;; esac
bench_start pummel-bench-plans
require_tools taskset python3 /usr/bin/time
setup_pummel
# A copy, so that a rebuild in the tree during the run cannot change the binary under test.
cp "$PUMMEL" "$WORK/pummel"
PUMMEL=$WORK/pummel
NOFILE=$(ulimit -n)
if [ "$PART" != cpu ] && [ "$NOFILE" -lt $((USERS + 100)) ]; then
    echo "open-file limit $NOFILE is below $((USERS + 100)); raise the hard limit (ulimit -Hn)" >&2; exit 2
fi

# ---------------------------------------------------------------------------------------------
# Part "sessions": RSS of held HTTP connections and WebSocket sessions.
# ---------------------------------------------------------------------------------------------

write_session_plans() {
    held_plan() {  # held_plan KIND COMMENT FLOW
        cat > "$WORK/held-$1.toml" <<EOF
# $2
[variables]
users = 10
ramp = "5s"
d = "30s"

[[scenario]]
name = "held $1"
users = "{{ users }}"
ramp_up = "{{ ramp }}"
duration = "{{ d }}"
flow = $3
EOF
    }
    held_plan http "Each user: one request on its keep-alive connection, then 20 s idle holding it; again." \
        '[ { request = { path = "/" } }, { think = "20s" } ]'
    held_plan ws "Each user: opens one WebSocket session and holds it until the run's end cuts the think." \
        '[ { ws_connect = { path = "/ws" } }, { think = "1h" } ]'
}

# Samples VmRSS and the number of open fds of the given PIDs every second into OUT ("t pid
# rss_kib fds" lines) until the first PID is gone; after LIMIT seconds it interrupts that PID
# (a bound on a run that hangs).
SAMPLER='
import os, signal, sys, time
out, limit, pids = sys.argv[1], float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
t0 = time.monotonic()
def rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0
with open(out, "w") as f:
    n = 0
    while True:
        t = time.monotonic() - t0
        first = rss(pids[0])
        if first is None:
            break
        for pid in pids:
            r = first if pid == pids[0] else rss(pid)
            if r is not None:
                f.write(f"{t:.2f} {pid} {r} {fds(pid)}\n")
        f.flush()
        if t > limit:
            os.kill(pids[0], signal.SIGINT)
            limit = float("inf")
        n += 1
        time.sleep(max(0.0, t0 + n - time.monotonic()))
'

# session_run KIND USERS: one run against a fresh sink; appends a line to $WORK/sessions.
session_run() {
    local kind=$1 users=$2 port sink_pid time_pid pummel_pid tag
    tag="$kind-$users"
    port=$(free_port)
    start_sink "$port" --duration "$((DURATION + 120))s"
    sink_pid=$TARGET_PID
    echo "  $kind, users=$users: $PUMMEL run held-$kind.toml -e users=$users -e ramp=${RAMP}s -e d=${DURATION}s -t $THREADS" >&2
    /usr/bin/time -f "%U %S %M" -o "$WORK/time-$tag" taskset -c 1 "$PUMMEL" run "$WORK/held-$kind.toml" \
        --base-url "http://127.0.0.1:$port" -e "users=$users" -e "ramp=${RAMP}s" -e "d=${DURATION}s" \
        -t "$THREADS" --json > "$WORK/out-$tag" 2> "$WORK/err-$tag" &
    time_pid=$!
    # /usr/bin/time's child is pummel (taskset executes it in place).
    pummel_pid=""
    for _ in $(seq 100); do
        pummel_pid=$(awk '{print $1}' "/proc/$time_pid/task/$time_pid/children" 2>/dev/null) || true
        if [ -n "$pummel_pid" ] && [ "$(cat "/proc/$pummel_pid/comm" 2>/dev/null)" = pummel ]; then break; fi
        pummel_pid=""
        sleep 0.02
    done
    if [ -z "$pummel_pid" ]; then echo "could not find pummel's PID" >&2; exit 3; fi
    python3 -c "$SAMPLER" "$WORK/rss-$tag" "$((DURATION + 60))" "$pummel_pid" "$sink_pid"
    wait "$time_pid" || true
    stop_targets
    if [ -n "$SAMPLES_DIR" ]; then mkdir -p "$SAMPLES_DIR"; cp "$WORK/rss-$tag" "$SAMPLES_DIR/"; fi
    python3 - "$kind" "$users" "$pummel_pid" "$sink_pid" "$RAMP" "$DURATION" \
        "$WORK/out-$tag" "$WORK/time-$tag" "$WORK/rss-$tag" >> "$WORK/sessions" <<'EOF'
import json, sys
kind, users, ppid, spid, ramp, dur, out, tfile, rfile = sys.argv[1:]
ramp, dur = float(ramp), float(dur)
u, s, peak = open(tfile).read().split()[-3:]
doc = json.loads(open(out).read())
req = doc["requests"]
p, k, pf = [], [], []
for line in open(rfile):
    t, pid, r, nfd = line.split()
    (p if pid == ppid else k).append((float(t), int(r)))
    if pid == ppid and float(t) >= dur / 2:
        pf.append(int(nfd))
def at(series, when):  # the first sample at or after `when`
    return next((r for t, r in series if t >= when), series[-1][1])
half = [r for t, r in p if t >= dur / 2]
end_ramp = at(p, ramp + 1)
sink_half = [r for t, r in k if dur / 2 <= t]
print(kind, users, peak, end_ramp, sum(half) // max(len(half), 1), max(half, default=0), p[-1][1],
      req["completed"], req["ok"], req["failed"], max(sink_half, default=0), f"{float(u) + float(s):.2f}",
      doc.get("connect_ms", {}).get("count", 0), sorted(pf)[len(pf) // 2] if pf else 0)
EOF
    tail -n 1 "$WORK/sessions" >&2
}

run_sessions() {
    write_session_plans
    : > "$WORK/sessions"
    echo "sessions: sink on core 0 (fresh per run), pummel on core 1 with -t $THREADS," \
        "ramp ${RAMP}s, duration ${DURATION}s, ulimit -n $NOFILE" >&2
    for kind in http ws; do
        session_run "$kind" "$BASE_USERS"
        session_run "$kind" "$USERS"
    done
    python3 - "$WORK/sessions" "$BASE_USERS" "$USERS" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows[(f[0], int(f[1]))] = dict(zip(
        "peak end_ramp half_mean half_max last completed ok failed sink_half cpu opened fds".split(),
        [float(x) for x in f[2:]]))
base, n = int(sys.argv[2]), int(sys.argv[3])
print(f"\n{'plan':<6} {'users':>6} {'peak':>9} {'end ramp':>9} {'2nd half':>9} {'2nd max':>9} {'last':>9}"
      f" {'requests ok/failed':>19} {'opened':>7} {'fds 2nd':>8} {'sink 2nd':>9} {'CPU-s':>6}   (RSS in MiB)")
mib = lambda k: f"{k / 1024:>9.1f}"
for (kind, users), r in rows.items():
    print(f"{kind:<6} {users:>6} {mib(r['peak'])} {mib(r['end_ramp'])} {mib(r['half_mean'])} {mib(r['half_max'])}"
          f" {mib(r['last'])} {int(r['ok']):>11}/{int(r['failed']):<7} {int(r['opened']):>7} {int(r['fds']):>8}"
          f" {mib(r['sink_half'])} {r['cpu']:>6.2f}")
print()
for kind in ("http", "ws"):
    lo, hi = rows.get((kind, base)), rows.get((kind, n))
    if not lo or not hi:
        continue
    per_peak = (hi["peak"] - lo["peak"]) / (n - base)
    per_half = (hi["half_mean"] - lo["half_mean"]) / (n - base)
    growth, growth_base = hi["half_max"] - hi["end_ramp"], lo["half_max"] - lo["end_ramp"]
    verdict = "met" if max(per_peak, per_half) <= 8 else "MISSED"
    print(f"{kind}: per held session {per_peak:.2f} KiB (peak) / {per_half:.2f} KiB (2nd-half mean);"
          f" {n} sessions {hi['peak'] / 1024:.1f} MiB peak; goal <= 8 KiB: {verdict}")
    print(f"      growth end of ramp-up -> 2nd-half max: {growth / 1024:+.1f} MiB with {n} users,"
          f" {growth_base / 1024:+.1f} MiB with {base}; per session {(growth - growth_base) / (n - base) * 1024:+.0f} B")
print("For scale: k6 publishes 1-5 MB of memory per VU.")
EOF
}

# ---------------------------------------------------------------------------------------------
# Part "cpu": CPU per request, plan against quick mode, on nginx.
# ---------------------------------------------------------------------------------------------

write_cpu_plans() {
    local d=$CPU_DURATION
    plan() {  # plan NAME PATH CHECK
        cat > "$WORK/cpu-$1.toml" <<EOF
[[scenario]]
name = "$1"
users = 50
duration = "${d}s"
flow = [ { request = { path = "$2"$3 } } ]
EOF
    }
    # shellcheck disable=SC2016
    plan plan '/items/{{ random_int(1, 10000000) }}' ', check = [ { status = "200-404" } ]'
    plan plan-static '/items/1' ''
    # shellcheck disable=SC2016
    plan plan-template '/items/{{ random_int(1, 10000000) }}' ''
    plan plan-check '/items/1' ', check = [ { status = "200-404" } ]'
}

# cpu_measure NAME CMD... : measure (bench/lib.sh), appending to $WORK/cpu; shows the line and
# busy%: CPU-seconds over the run's length; well below 100 % the generator waited, for a target
# slowed down or a core 1 shared with other work, which lowers req/s but not CPU per request, the
# figure compared.
cpu_measure() {
    measure "$@" >> "$WORK/cpu"
    tail -n 1 "$WORK/cpu" | awk -v d="$CPU_DURATION" '{ printf "%s busy %.0f%%\n", $0, $5 / d * 100 }' >&2
}

run_cpu() {
    PORT=$(free_port)
    MEASURE_TIMEOUT=$((CPU_DURATION + 60))
    write_cpu_plans
    start_nginx "$PORT"
    : > "$WORK/cpu"
    local variants=(plan)
    [ "$BREAKDOWN" = 1 ] && variants+=(plan-static plan-template plan-check)
    echo "cpu: nginx on core 0 at 127.0.0.1:$PORT; pummel on core 1, -t 1, 50 users," \
        "${CPU_DURATION}s per run, $ROUNDS rounds" >&2
    for round in $(seq "$ROUNDS"); do
        echo "round $round" >&2
        cpu_measure quick "$PUMMEL" run "http://127.0.0.1:$PORT/items/1" -c 50 -d "${CPU_DURATION}s" -t 1 --json
        for v in "${variants[@]}"; do
            cpu_measure "$v" "$PUMMEL" run "$WORK/cpu-$v.toml" --base-url "http://127.0.0.1:$PORT" -t 1 --json
        done
    done
    stop_targets
    report "$WORK/cpu" "$CPU_DURATION" <<'EOF'
print(f"\n{'variant':<14} {'runs':>4} {'req/s':>10} {'CPU-s/10k':>10} {'busy':>5} {'not ok':>7} {'CPU vs quick':>13} {'req/s vs quick':>15}")
base = avg("quick", "completed")
for name in rows:
    a = avg(name, "completed")
    busy = a.cpu / float(sys.argv[2]) * 100
    print(f"{name:<14} {a.runs:>4} {a.rps:>10.0f} {a.cpu10k:>10.4f} {busy:>4.0f}% {a.bad:>7} {a.cpu10k / base.cpu10k:>12.2f}x {a.rps / base.rps:>14.2f}x")
ratio = avg("plan", "completed").cpu10k / base.cpu10k
print(f"\nplan / quick CPU per request: {ratio:.2f}x; goal <= 1.30x: {'met' if ratio <= 1.3 else 'MISSED'}")
EOF
}

if [ "$PART" = sessions ] || [ "$PART" = all ]; then run_sessions; fi
if [ "$PART" = cpu ] || [ "$PART" = all ]; then run_cpu; fi
