#!/usr/bin/env bash
# Set up (Debian packages + .venv) and run the whole test suite, slow tests included, in
# $SEMDNS_TEST_WORKERS processes (default 2; each takes whole test files, so a file's module
# fixtures, e.g. a cluster, are made once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${SEMDNS_TEST_WORKERS:-2}" --dist loadfile "$@"
