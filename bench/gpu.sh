#!/usr/bin/env bash
# Issue 16's GPU benchmark: every case of its table plus the new paths, one JSON line each with
# its target and pass/fail, then a summary line. About 3-4 minutes on one H100/H200.
#   bench/gpu.sh            # on a GPU, the report's sizes
#   bench/gpu.sh --quick    # tiny shapes on the CPU: a smoke test (targets not judged)
# Extra flags go to bench/gpu_cases.py (--steps, --honesty-steps, --cli-steps, --device).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" bench/gpu_cases.py "$@"
