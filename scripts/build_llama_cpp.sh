#!/usr/bin/env bash
# The optional llama.cpp generator backend (linqrag.generation.LlamaCppGenerator): build the
# llama-cpp-python wheel once into a cache, then install it from there.
#
#   bash scripts/build_llama_cpp.sh                 # `make llama-cpp`: build if no wheel is cached, install
#   bash scripts/build_llama_cpp.sh --cached-only   # what setup.sh runs: install a cached wheel, never compile
#
# Compiling llama.cpp takes about 10-15 minutes on 2 cores (CMAKE_BUILD_PARALLEL_LEVEL=$(nproc));
# the wheel is built for this machine's CPU, so keep the cache per machine. FORCE=1 rebuilds.
# Not with -march=native: on CPUs that report AMX (or AVX-512 FP16) inside a VM or sandbox that does
# not grant it, a native build dies with SIGILL on the first matrix product. AVX2/FMA/F16C runs on
# any x86-64 of the last decade; override with CMAKE_ARGS (e.g. "-DGGML_NATIVE=ON") where it is safe.
# linqrag also probes the installed library once in a child process before it uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VERSION=${LLAMA_CPP_VERSION:-0.3.36}
WHEELS=${LINQRAG_WHEELS:-$HOME/.cache/linqrag/wheels}
export PIP_DISABLE_PIP_VERSION_CHECK=1

install_cached() {
  # --no-index: only the cache, and pip picks the wheel that fits this Python (or fails)
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" --no-deps "llama-cpp-python==$VERSION" 2>/dev/null || return 1
  "$PY" -c "import diskcache" 2>/dev/null || "$PY" -m pip install -q diskcache
  "$PY" -m pip install -q "jinja2>=2.11.3" "numpy>=1.20.0" "typing-extensions>=4.5.0"
  "$PY" -c "import llama_cpp; print('[llama-cpp] llama_cpp', llama_cpp.__version__, 'installed from $WHEELS')"
}

if [ "${1:-}" = "--cached-only" ]; then
  "$PY" -c "import llama_cpp" 2>/dev/null && exit 0
  ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1 || exit 0
  install_cached || echo "[llama-cpp] no wheel in $WHEELS fits this Python: skipped (make llama-cpp builds one)"
  exit 0
fi

if [ "${FORCE:-0}" != 1 ] && install_cached; then
  exit 0
fi
mkdir -p "$WHEELS"
echo "[llama-cpp] building llama-cpp-python $VERSION (CPU, $(nproc) parallel jobs) into $WHEELS; takes ~10-15 min"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
echo "[llama-cpp] CMAKE_ARGS=$CMAKE_ARGS"
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$PY" -m pip wheel --no-cache-dir --no-deps "llama-cpp-python==$VERSION" -w "$WHEELS"
install_cached
