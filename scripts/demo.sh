#!/usr/bin/env bash
# Set up .venv if needed, then run the Grid Guardian data plane end to end on the bundled real data.
# Extra arguments go to `grid-guardian demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/grid-guardian demo --dagster-yaml dagster.yaml "$@"
