#!/usr/bin/env bash
# What merging costs a coordinator: `pummel run --agents N` against `pummel sink`, with N local
# agents (one thread each), for N in AGENTS. Every agent's shards send the coordinator one
# report per second with their histograms whole (V2 + DEFLATE), and the coordinator decodes and
# merges them into the live timeline; this measures the coordinator's own CPU time and peak RSS
# (its agents are not its children, so /usr/bin/time counts the coordinator alone), and prints
# the CPU per agent-second. It also checks that the merged count equals what was offered.
#
# The sink is pinned to core 0; the coordinator and its agents to core 1.
#
# Usage: bench/cluster.sh [--duration 10] [--rate 2000] [--agents "1 2 4 8"]
# Needs: taskset, python3, /usr/bin/time. PUMMEL=/path/to/pummel skips the release build.
# Loopback only; every run is bounded in time.
set -euo pipefail

DURATION=10
RATE=2000
AGENTS="1 2 4 8"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
parse_options --duration=DURATION --rate=RATE --agents=AGENTS -- "$@"
bench_start pummel-bench-cluster
require_tools taskset python3 /usr/bin/time
setup_pummel
PORT=$(free_port)
start_sink "$PORT" --duration "$((DURATION * 10 + 300))s"
export PUMMEL_TOKEN="bench-$$"
FIGURES="$WORK/figures"
: > "$FIGURES"

for n in $AGENTS; do
    listen="127.0.0.1:$(free_port)"
    /usr/bin/time -f "%U %S %M" -o "$WORK/time" timeout "$((DURATION + 120))" taskset -c 1 \
        "$PUMMEL" run "http://127.0.0.1:$PORT/" --agents "$n" --listen "$listen" --agents-timeout 60s \
        -r "$RATE" -d "${DURATION}s" -t 1 --json > "$WORK/out" 2> "$WORK/err" &
    coordinator=$!
    agents=()
    for i in $(seq "$n"); do
        timeout "$((DURATION + 120))" taskset -c 1 "$PUMMEL" agent --coordinator "$listen" --name "a$i" \
            --quiet > /dev/null 2>> "$WORK/agents.err" &
        agents+=($!)
    done
    wait "$coordinator" || { echo "the coordinator of $n agents failed:" >&2; tail -n 20 "$WORK/err" >&2; exit 3; }
    for pid in "${agents[@]}"; do wait "$pid" || true; done
    python3 - "$n" "$DURATION" "$RATE" "$WORK/out" "$WORK/time" >> "$FIGURES" <<'PY'
import json, sys
n, duration, rate, out, tfile = sys.argv[1:]
doc = json.load(open(out))
u, s, rss = open(tfile).read().split()[-3:]
print(n, duration, rate, doc["requests"]["sent"], float(u) + float(s), rss, len(doc.get("agents", [])))
PY
done

python3 - "$FIGURES" <<'PY'
import sys
print(f"{'agents':>6} {'offered':>9} {'merged sent':>11} {'coord cpu s':>11} {'cpu ms/agent-s':>14} {'coord rss MiB':>13}")
for line in open(sys.argv[1]):
    n, duration, rate, sent, cpu, rss, agents = line.split()
    n, duration, rate, sent, cpu, rss = int(n), float(duration), float(rate), int(sent), float(cpu), int(rss)
    offered = int(rate * duration)
    per = cpu / (n * duration) * 1000
    flag = "" if sent == offered else "  (merged count differs from the offer)"
    print(f"{n:>6} {offered:>9} {sent:>11} {cpu:>11.3f} {per:>14.2f} {rss / 1024:>13.1f}{flag}")
PY
