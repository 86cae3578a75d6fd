#!/usr/bin/env bash
# Create .venv in the repository root and install Grid Guardian with its test tools. Safe to run again:
# it reinstalls only when pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)'; then
  echo "error: Grid Guardian needs Python 3.11 or 3.12 (\$PYTHON=$PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

stamp=.venv/.grid-guardian-installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "Installing Grid Guardian into .venv (first run takes a few minutes)..." >&2
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
# torch==2.13.0 is pinned in pyproject.toml. On a machine without a local CPU wheel, point pip at PyTorch's CPU
# wheel index first (PIP_EXTRA_INDEX_URL), or pip takes the multi-GB CUDA build.
.venv/bin/python -m pip install --quiet -e '.[dev]'
# Declares torch-sparse/torch-scatter, which have no wheels for torch 2.13: installed without its declared
# dependencies; grid_guardian_assets/compat/pyg_temporal.py supplies the one import it needs.
.venv/bin/python -m pip install --quiet --no-deps 'torch-geometric-temporal==0.56.2'
echo "$want" > "$stamp"
