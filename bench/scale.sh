#!/usr/bin/env bash
# 100,000 connections and sessions on one machine whose processes may hold 20,000 fds each:
# pummel spreads the load over local agent processes (--workers) and the built-in target over
# processes sharing one port (sink --processes, SO_REUSEPORT).
#
#   held      `hold --workers W -c CONNECTIONS --source-addrs ...` against `sink --processes P`:
#             all established? errors? time until every connection was held; pummel's total RSS
#             over all its processes (coordinator and workers, sampled from /proc while held)
#             per connection (the goal: <= 4 KiB).
#   sessions  examples/sessions.toml with USERS WebSocket users (10 % acting every 20 s) over
#             --workers W: all sessions established, the answers' latency p99, errors, and
#             pummel's total RSS per session.
#
# Source addresses: one source address reaches one destination port through about 28,000
# ephemeral ports (net.ipv4.ip_local_port_range), so 100,000 connections to one port need 4;
# 127.0.0.2-127.0.0.9 are loopback addresses on Linux without any setup.
#
# Usage: bench/scale.sh [--part held|sessions|all] [--connections 100000] [--users 100000]
#                       [--workers 6] [--processes 6] [--hold 40]
# Needs: python3, /usr/bin/time; the hard fd limit >= 20,000. PUMMEL=/path/to/pummel skips the
# release build. Loopback only; every run is bounded in time.
set -euo pipefail

PART=all
CONNECTIONS=100000
USERS=100000
WORKERS=6
PROCESSES=6
HOLD=40

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
parse_options --part=PART --connections=CONNECTIONS --users=USERS --workers=WORKERS \
    --processes=PROCESSES --hold=HOLD -- "$@"
bench_start pummel-bench-scale
require_tools python3 /usr/bin/time
setup_pummel
SOURCES="127.0.0.2-127.0.0.9"

# rss_of_tree PID: the summed VmRSS (KiB) of the pummel processes among PID and all its
# descendants (the coordinator and its workers; not the time and timeout wrappers).
rss_of_tree() {
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
children = {}
for entry in os.listdir("/proc"):
    if not entry.isdigit():
        continue
    try:
        stat = open(f"/proc/{entry}/stat").read()
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        continue
    children.setdefault(ppid, []).append(int(entry))
total, todo = 0, [root]
while todo:
    pid = todo.pop()
    todo.extend(children.get(pid, []))
    try:
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        continue
    name = next((l.split()[1] for l in status.splitlines() if l.startswith("Name:")), "")
    if name == "pummel":
        total += next((int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:")), 0)
print(total)
PY
}

# sample_rss PID FILE: appends "seconds rss_kib" every second while PID lives.
sample_rss() {
    local start=$SECONDS
    while kill -0 "$1" 2>/dev/null; do
        echo "$((SECONDS - start)) $(rss_of_tree "$1")" >> "$2"
        sleep 1
    done
}

# start_sinks PORT: `pummel sink --processes PROCESSES` on 127.0.0.1:PORT, long enough for one part.
start_sinks() {
    "$PUMMEL" sink --listen "127.0.0.1:$1" --processes "$PROCESSES" --idle-timeout 600s \
        --duration "$((HOLD + 300))s" > "$WORK/sink.out" 2> "$WORK/sink.err" &
    track_target $!
    wait_for_port "$1" "$WORK/sink.err"
}

held() {
    local port
    port=$(free_port)
    start_sinks "$port"
    : > "$WORK/held.rss"
    /usr/bin/time -f "%e" -o "$WORK/held.time" timeout "$((HOLD + 300))" \
        "$PUMMEL" hold "http://127.0.0.1:$port/" --workers "$WORKERS" -c "$CONNECTIONS" \
        --open-rate 10000/s --source-addrs "$SOURCES" -d "${HOLD}s" -o "$WORK/held.json" --quiet \
        > /dev/null 2> "$WORK/held.err" &
    local hold=$!
    sample_rss "$hold" "$WORK/held.rss" &
    wait "$hold" || { echo "hold failed:" >&2; tail -n 20 "$WORK/held.err" >&2; }
    wait
    stop_targets
    python3 - "$CONNECTIONS" "$WORK/held.json" "$WORK/held.rss" <<'PY'
import json, sys
wanted, doc, rss = int(sys.argv[1]), json.load(open(sys.argv[2])), sys.argv[3]
timeline = doc["timeline"]
full = next((e["second"] for e in timeline if e["connections"] >= wanted), None)
peak = max(e["connections"] for e in timeline)
s = doc["summary"]
samples = [tuple(map(int, l.split())) for l in open(rss) if l.strip()]
held = [kib for (t, kib) in samples if full is not None and t >= full + 2]
print(f"held: {peak:,} of {wanted:,} connections at the peak; all held after {full} s" if full else
      f"held: {peak:,} of {wanted:,} at the peak: NOT all established")
print(f"      opened {s['connect_ms']['count']:,}, failed {s['requests']['failed']}, "
      f"errors {s.get('errors', {})}")
if held:
    mean = sum(held) / len(held)
    print(f"      pummel's RSS over all its processes while held: mean {mean/1024:.1f} MiB, max {max(held)/1024:.1f} MiB "
          f"= {max(held) * 1024 / wanted / 1024:.2f} KiB per connection (goal <= 4 KiB)")
for a in s.get("agents", []):
    print(f"      {a['name']}: segment {a['segment']}, cpu {a['cpu_seconds']:.1f} s")
PY
}

sessions() {
    local port
    port=$(free_port)
    start_sinks "$port"
    : > "$WORK/sessions.rss"
    local ramp=$((USERS / 2000 + 1))
    timeout "$((HOLD + ramp + 300))" "$PUMMEL" run "$ROOT/examples/sessions.toml" \
        --base-url "http://127.0.0.1:$port" -e "users=$USERS" -e "ramp_up=${ramp}s" \
        -d "$((ramp + HOLD))s" --workers "$WORKERS" --source-addrs "$SOURCES" \
        -o "$WORK/sessions.json" --quiet > /dev/null 2> "$WORK/sessions.err" &
    local run=$!
    sample_rss "$run" "$WORK/sessions.rss" &
    wait "$run" || { echo "the sessions run failed:" >&2; tail -n 20 "$WORK/sessions.err" >&2; }
    wait
    stop_targets
    python3 - "$USERS" "$ramp" "$WORK/sessions.json" "$WORK/sessions.rss" <<'PY'
import json, sys
users, ramp, doc, rss = int(sys.argv[1]), int(sys.argv[2]), json.load(open(sys.argv[3])), sys.argv[4]
s = doc["summary"]
named = {n["name"]: n for n in s.get("by_name", s.get("requests_by_name", []))} if isinstance(s.get("by_name"), list) else {}
peak = max(e["connections"] for e in doc["timeline"])
samples = [tuple(map(int, l.split())) for l in open(rss) if l.strip()]
late = [kib for (t, kib) in samples if t >= ramp + 5]
print(f"sessions: {peak:,} of {users:,} WebSocket sessions held at the peak; requests ok {s['requests']['ok']:,}, "
      f"failed {s['requests']['failed']:,}; latency p99 {s.get('latency_ms', {}).get('p99')} ms")
if late:
    print(f"      pummel's RSS over all its processes after the ramp: max {max(late)/1024:.1f} MiB "
          f"= {max(late) * 1024 / users / 1024:.2f} KiB per session")
PY
}

case "$PART" in
    held) held ;;
    sessions) sessions ;;
    all) held; sessions ;;
    *) echo "--part: held, sessions or all" >&2; exit 2 ;;
esac
