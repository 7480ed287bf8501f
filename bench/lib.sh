# Helpers shared by the bench/ scripts; sourced, not run.

# A TCP port on 127.0.0.1 that is free now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Builds pummel in release mode, sets PUMMEL to the binary, and raises the open-file limit to
# the hard limit for this shell and the generators it starts. Needs ROOT.
build_pummel() {
    echo "building pummel (release)..." >&2
    (cd "$ROOT" && cargo build --release -q)
    PUMMEL="$ROOT/target/release/pummel"
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# Waits up to 5 s until something accepts on 127.0.0.1:$1; exits 3 when nothing does.
wait_for_port() {
    for _ in $(seq 50); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return; fi
        sleep 0.1
    done
    echo "target did not start" >&2; exit 3
}
