# Helpers the test scripts share; `source` it (scripts/mcp-conformance.sh, scripts/schemathesis.sh).

# free_port: a free loopback TCP port.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for URL PID: until URL answers 200, for at most 30 s, while PID lives.
wait_for() {
    local deadline=$((SECONDS + 30))
    until curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}
