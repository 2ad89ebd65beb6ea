#!/usr/bin/env bash
# Set up, start a semantic nameserver on the shipped zones (127.0.0.1:${PORT:-5353}), ask it an
# example question with dig, then keep serving until Ctrl-C. DEMO_ONCE=1 stops after the example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PORT="${PORT:-5353}"
SEMDNS=.venv/bin/semdns

$SEMDNS zone check zonefiles
$SEMDNS serve --zones zonefiles --listen "127.0.0.1:$PORT" --listen "[::1]:$PORT" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do
    dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 SOA semantic.root >/dev/null 2>&1 && break
    sleep 0.2
done

question="is a verbal agreement legally binding"
name="$($SEMDNS encode "$question")"
echo "== dig SRV for: $question"
echo "   ($name)"
dig @127.0.0.1 -p "$PORT" SRV "$name"
echo "== how it was routed:"
dig @127.0.0.1 -p "$PORT" +short TXT "$($SEMDNS encode --explain "$question")"

if [ "${DEMO_ONCE:-0}" = 1 ]; then exit 0; fi
echo "== serving on 127.0.0.1:$PORT and [::1]:$PORT; Ctrl-C to stop"
wait $server
