#!/usr/bin/env bash
# The main job: set up, start a semantic nameserver on the shipped zones (127.0.0.1:${PORT:-5353})
# and a llama.cpp engine (SmolLM2-135M-Instruct) that registers itself in DNS, ask an example
# question with dig and with `semdns ask`, then keep serving until Ctrl-C.
# DEMO_ONCE=1 stops after the example; PORT, ENGINE_PORT and RUN_DIR override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PORT="${PORT:-5353}"
ENGINE_PORT="${ENGINE_PORT:-8111}"   # the port the shipped zone lists for contract.legal's engine
SEMDNS=.venv/bin/semdns
RUN="${RUN_DIR:-.run/demo}"
mkdir -p "$RUN"

$SEMDNS zone check zonefiles
[ -f "$RUN/keys.conf" ] || $SEMDNS zone keygen engine.contract.legal.semantic.root -o "$RUN/keys.conf"
# the server refuses key and journal files others may read (a .run/ from an older version had 0644)
chmod 600 "$RUN/keys.conf"
[ ! -d "$RUN/journal" ] || chmod -R go-rwx "$RUN/journal"

$SEMDNS serve --zones zonefiles --listen "127.0.0.1:$PORT" --listen "[::1]:$PORT" \
    --tsig-keys "$RUN/keys.conf" --journal "$RUN/journal" >"$RUN/serve.log" 2>&1 &
server=$!
engine=""
cleanup() {
    [ -n "$engine" ] && kill "$engine" 2>/dev/null && wait "$engine" 2>/dev/null
    kill "$server" 2>/dev/null; wait "$server" 2>/dev/null
}
trap cleanup EXIT
wait_for() {  # wait_for FILE TEXT: until the log says TEXT (or the process died)
    for _ in $(seq 600); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "timed out; see $1" >&2; cat "$1" >&2; return 1
}
wait_for "$RUN/serve.log" "ready: listening"

question="is a verbal agreement legally binding"
name="$($SEMDNS encode "$question")"
echo "== dig SRV for: $question"
echo "   ($name)"
dig @127.0.0.1 -p "$PORT" SRV "$name"
echo "== how it was routed (dig TXT on the explain form):"
dig @127.0.0.1 -p "$PORT" +short TXT "$($SEMDNS encode --explain "$question")"

echo "== starting a llama.cpp engine for contract.legal.semantic.root. on 127.0.0.1:$ENGINE_PORT (registers by DNS UPDATE)"
$SEMDNS engine --backend llama --domain contract.legal.semantic.root. --listen "127.0.0.1:$ENGINE_PORT" --ctx 1024 \
    --server "127.0.0.1:$PORT" --tsig-key "$RUN/keys.conf" >"$RUN/engine.log" 2>&1 &
engine=$!
wait_for "$RUN/engine.log" "engine ready"
sleep 1
echo "== dig SRV _llm._tcp.contract.legal.semantic.root (the static and the registered engine):"
dig @127.0.0.1 -p "$PORT" +noall +answer SRV _llm._tcp.contract.legal.semantic.root
echo "== semdns ask:"
$SEMDNS ask "$question" --server "127.0.0.1:$PORT" --max-tokens 64 --verbose

if [ "${DEMO_ONCE:-0}" = 1 ]; then exit 0; fi
echo "== serving on 127.0.0.1:$PORT and [::1]:$PORT (engine on 127.0.0.1:$ENGINE_PORT); Ctrl-C to stop"
wait "$server"
