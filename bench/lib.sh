# shellcheck shell=bash
# Helpers shared by the bench/ scripts; sourced, not run.
#
# A script sets its defaults and ROOT (the repository), sources this file, then calls:
#   parse_options SPEC... -- "$@"     its command-line options
#   bench_start NAME                  work dir WORK=/tmp/NAME.XXXXXX, removed at exit with the targets
#   require_tools TOOL...             exits 2 naming the package of each tool that is missing
#   setup_pummel                      PUMMEL: the given binary, or a release build
#   start_nginx PORT ... / start_sink PORT ...   the target, pinned to core 0
#   measure NAME CMD... >> FILE       one generator run, pinned to core 1: one line of figures
#   report FILE <<'EOF' ... EOF       its python report over those lines
# and keeps for itself its runs, its ratios and what its report prints.

# parse_options SPEC... -- ARG...: sets the script's variables from its command line. A SPEC
# OPTION=VAR takes a value (`--rounds=ROUNDS`: `--rounds 3` sets ROUNDS=3); OPTION=VAR=VALUE is a
# flag (`--skip-rss=SKIP_RSS=1`). Exits 2 on an unknown argument or a missing value.
parse_options() {
    local specs=() spec arg var
    while [ $# -gt 0 ] && [ "$1" != -- ]; do specs+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    while [ $# -gt 0 ]; do
        arg=$1
        var=""
        for spec in "${specs[@]}"; do
            if [ "${spec%%=*}" = "$arg" ]; then var=${spec#*=}; break; fi
        done
        if [ -z "$var" ]; then echo "unknown argument: $arg" >&2; exit 2; fi
        case "$var" in
            *=*) printf -v "${var%%=*}" '%s' "${var#*=}"; shift ;;
            *)
                if [ $# -lt 2 ]; then echo "$arg needs a value" >&2; exit 2; fi
                printf -v "$var" '%s' "$2"
                shift 2
                ;;
        esac
    done
}

# A TCP port on 127.0.0.1 that is free now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PIDs of the targets started and not yet stopped; TARGET_PID is the last one started.
TARGET_PIDS=""
TARGET_PID=""

# bench_start NAME: makes the work dir WORK (/tmp/NAME.XXXXXX) and sets the EXIT trap that stops
# every target still running and removes WORK. RESULTS: an empty file in it, for measure's lines.
bench_start() {
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    trap bench_cleanup EXIT
    RESULTS="$WORK/results"
    : > "$RESULTS"
}

bench_cleanup() {
    stop_targets
    rm -rf "$WORK"
}

# Stops (SIGTERM, then waits for) every target started so far.
stop_targets() {
    local pid
    for pid in $TARGET_PIDS; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    TARGET_PIDS=""
    TARGET_PID=""
}

# Records PID as a target for stop_targets and the exit trap.
# shellcheck disable=SC2034  # TARGET_PID is read by the scripts
track_target() {
    TARGET_PID=$1
    TARGET_PIDS="$TARGET_PIDS $1"
}

# require_tools TOOL...: exits 2 when a tool is missing, naming its Debian package. A TOOL with a
# slash (/usr/bin/time) must be that executable; others are looked up on PATH.
require_tools() {
    local tool missing=0
    for tool in "$@"; do
        case "$tool" in
            */*) [ -x "$tool" ] && continue ;;
            *) command -v "$tool" >/dev/null && continue ;;
        esac
        echo "missing $tool (apt-get install $(package_of "$tool"))" >&2
        missing=1
    done
    [ "$missing" = 0 ] || exit 2
}

# The Debian package that installs TOOL.
package_of() {
    case "$1" in
        /usr/bin/time) echo time ;;
        taskset) echo util-linux ;;
        h2load) echo nghttp2-client ;;
        nginx) echo nginx-light ;;
        *) basename "$1" ;;
    esac
}

# Sets PUMMEL to the binary under test: PUMMEL from the environment when set, else a release
# build (needs ROOT). Raises the open-file limit to the hard limit for this shell and the
# generators and targets it starts.
setup_pummel() {
    if [ -z "${PUMMEL:-}" ]; then
        echo "building pummel (release)..." >&2
        (cd "$ROOT" && cargo build --release -q)
        PUMMEL="$ROOT/target/release/pummel"
    fi
    [ -x "$PUMMEL" ] || { echo "PUMMEL=$PUMMEL is not an executable" >&2; exit 2; }
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# wait_for_port PORT [LOG]: waits up to 5 s until something accepts on 127.0.0.1:PORT (giving up
# early when the target last started has exited); when nothing does, prints the end of LOG (the
# target's stderr) and exits 3.
wait_for_port() {
    for _ in $(seq 50); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return; fi
        if [ -n "$TARGET_PID" ] && ! kill -0 "$TARGET_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "target did not start on port $1" >&2
    if [ -n "${2:-}" ] && [ -s "$2" ]; then tail -n 20 "$2" >&2; fi
    exit 3
}

# start_nginx PORT [http2] [tls CERT KEY] [no-resume PORT2]: nginx (one worker, no access log,
# keep-alive connections kept for 120 s and 100,000,000 requests, `return 200 "ok\n"` on every
# path) on 127.0.0.1:PORT, pinned to core 0; waits until it accepts.
#   http2          HTTP/2 on the port (h2c without tls), up to 1000 concurrent streams each.
#   tls CERT KEY   HTTPS (TLS 1.2 and 1.3) with that PEM certificate and key, session cache on.
#   no-resume P2   with tls: a second server on P2 that refuses session resumption (no tickets,
#                  no session cache), for full handshakes from clients that always resume.
start_nginx() {
    local port=$1 http2=0 cert="" key="" port2="" nginx_bin opts=""
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
            http2) http2=1; shift ;;
            tls) cert=$2; key=$3; shift 3 ;;
            no-resume) port2=$2; shift 2 ;;
            *) echo "start_nginx: unknown option $1" >&2; exit 2 ;;
        esac
    done
    if [ -n "$port2" ] && [ -z "$cert" ]; then echo "start_nginx: no-resume needs tls" >&2; exit 2; fi
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    [ -x "$nginx_bin" ] || { echo "nginx not found (apt-get install nginx-light)" >&2; exit 2; }
    if [ -n "$cert" ]; then opts="$opts ssl"; fi
    if [ "$http2" = 1 ]; then opts="$opts http2"; fi
    mkdir -p "$WORK/nginx/logs"
    {
        cat <<EOF
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
EOF
        if [ "$http2" = 1 ]; then echo "    http2_max_concurrent_streams 1000;"; fi
        if [ -n "$cert" ]; then
            echo "    ssl_protocols TLSv1.2 TLSv1.3;"
            echo "    ssl_certificate $cert;"
            echo "    ssl_certificate_key $key;"
        fi
        nginx_server "$port" "$opts" "${cert:+ssl_session_cache shared:SSL:10m;}"
        if [ -n "$port2" ]; then nginx_server "$port2" "$opts" "ssl_session_tickets off;" "ssl_session_cache off;"; fi
        echo "}"
    } > "$WORK/nginx/nginx.conf"
    taskset -c 0 "$nginx_bin" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
    track_target $!
    wait_for_port "$port" "$WORK/nginx/logs/error.log"
    if [ -n "$port2" ]; then wait_for_port "$port2" "$WORK/nginx/logs/error.log"; fi
}

# nginx_server PORT LISTEN_OPTS [DIRECTIVE...]: prints a server block of start_nginx's config.
nginx_server() {
    local port=$1 opts=$2 directive
    shift 2
    echo "    server {"
    echo "        listen 127.0.0.1:$port$opts backlog=4096;"
    for directive in "$@"; do
        if [ -n "$directive" ]; then echo "        $directive"; fi
    done
    printf '        location / { return 200 "ok\\n"; }\n'
    echo "    }"
}

# start_sink PORT ARGS...: `pummel sink --listen 127.0.0.1:PORT ARGS...` pinned to core 0 (its
# stdout and stderr in WORK/sink-PORT.out and .err); waits until it accepts. ARGS should bound
# it (--duration) in case the script is killed before its trap runs.
start_sink() {
    local port=$1
    shift
    taskset -c 0 "$PUMMEL" sink --listen "127.0.0.1:$port" "$@" \
        > "$WORK/sink-$port.out" 2> "$WORK/sink-$port.err" &
    track_target $!
    wait_for_port "$port" "$WORK/sink-$port.err"
}

# measure NAME CMD...: runs CMD pinned to core 1 under /usr/bin/time, bounded by MEASURE_TIMEOUT
# seconds (default 300), and prints one line
#
#   NAME req/s completed ok cpu_seconds peak_rss_kib
#
# cpu_seconds is user + sys; completed counts the responses received and ok those the tool counts
# as successful. The tool is known by CMD's file name: pummel (its --json summary: requests
# completed and ok), wrk (ok: less its "Non-2xx or 3xx responses"), oha (--output-format json;
# ok: every response, as oha counts success), h2load (done and succeeded). When its output
# cannot be read it says so on stderr, with the output's end, and prints nothing.
measure() {
    local name=$1
    shift
    /usr/bin/time -f "%U %S %M" -o "$WORK/time" timeout "${MEASURE_TIMEOUT:-300}" taskset -c 1 "$@" \
        > "$WORK/out" 2> "$WORK/err" || true
    python3 - "$name" "$(basename "$1")" "$WORK/out" "$WORK/err" "$WORK/time" <<'EOF'
import json, re, sys
name, tool, out, err, tfile = sys.argv[1:]
stdout = open(out).read()
text = stdout + open(err).read()
def number(pattern):
    m = re.search(pattern, text)
    if not m:
        raise ValueError(f"no {pattern!r}")
    return m.group(1)
try:
    u, s, rss = open(tfile).read().split()[-3:]
    cpu = float(u) + float(s)
    if tool == "pummel":
        doc = json.loads(stdout)
        rps, completed, ok = doc["rate"]["achieved"], doc["requests"]["completed"], doc["requests"]["ok"]
    elif tool == "wrk":
        rps = float(number(r"Requests/sec:\s+([\d.]+)"))
        completed = int(number(r"(\d+) requests in"))
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
        ok = completed - (int(bad.group(1)) if bad else 0)
    elif tool == "oha":
        doc = json.loads(stdout)
        rps = doc["summary"]["requestsPerSec"]
        completed = ok = sum(doc.get("statusCodeDistribution", {}).values())
    elif tool == "h2load":
        completed = int(number(r"requests: \d+ total, \d+ started, (\d+) done"))
        ok = int(number(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded"))
        rps = float(number(r"finished in [\d.]+\w+, ([\d.]+) req/s"))
    else:
        raise ValueError(f"no parser for the output of {tool}")
except Exception as e:
    sys.stderr.write(f"{name}: could not read its output ({e}):\n{text[-2000:]}\n")
    sys.exit(0)
print(f"{name} {rps:.1f} {completed} {ok} {cpu:.3f} {rss}")
EOF
}

# report FILE [ARG...]: runs the python report read from stdin, with sys.argv[1] = FILE (lines
# from measure) and sys.argv[2:] = ARGs, after a prelude that defines:
#   rows               NAME -> that name's runs, in the order the names first came
#   avg(name, count)   the runs of NAME averaged: .runs, .rps, .cpu (CPU-seconds), .cpu10k (CPU-s
#                      per 10,000 `count` requests: "completed" or "ok"), .per_core (`count`
#                      requests per CPU-second), .rss_mib (the peak) and .bad (completed - ok, summed)
report() {
    local file=$1
    shift
    {
        cat <<'EOF'
import sys, collections, types
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, rps, completed, ok, cpu, rss = line.split()
    rows[name].append(dict(rps=float(rps), completed=int(completed), ok=int(ok), cpu=float(cpu), rss=int(rss)))
def avg(name, count):
    runs = rows[name]
    mean = lambda f: sum(f(r) for r in runs) / len(runs)
    return types.SimpleNamespace(
        runs=len(runs), rps=mean(lambda r: r["rps"]), cpu=mean(lambda r: r["cpu"]),
        cpu10k=mean(lambda r: r["cpu"] / max(r[count], 1) * 1e4),
        per_core=mean(lambda r: r[count] / max(r["cpu"], 1e-9)),
        rss_mib=max(r["rss"] for r in runs) / 1024, bad=sum(r["completed"] - r["ok"] for r in runs))
EOF
        cat
    } | python3 - "$file" "$@"
}
