"""The OpenVINO CPU path: the exported ONNX graph (:mod:`embedder.onnx`) run by OpenVINO Runtime in
bfloat16, which CPUs with AMX multiply natively.

On such a CPU (Intel Sapphire Rapids and later) it is about 3x torch's speed with vectors within
1e-4 cosine of torch's fp32 ones, so ``auto`` picks it there (bench/RESULTS.md, "CPU indexing").
On a CPU without native bf16 OpenVINO computes in fp32 instead (no faster than ``onnx``): an index
built this way still answers there, with a warning that it is slow.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from functools import cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BACKEND = "openvino-bf16"


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere: then nothing is assumed)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    line = next((row for row in text.splitlines() if row.startswith(("flags", "Features"))), "")  # x86, Arm
    return frozenset(line.partition(":")[2].split())


def has_amx_bf16() -> bool:
    """True where the CPU multiplies bf16 matrices in AMX tiles: where the OpenVINO path was measured fast."""
    return "amx_bf16" in cpu_flags()


def why_not_openvino() -> str | None:
    if not openvino_available():
        return "OpenVINO is not installed (pip install openvino for the bf16 CPU path)"
    return None


class OpenVinoSession:
    """One compiled OpenVINO model behind the ``run(feeds) -> vectors`` call :class:`~embedder.onnx.OnnxEmbedder`
    makes; a lock serialises callers, since an infer request serves one at a time."""

    def __init__(self, model_path: Path, threads: int) -> None:
        import openvino

        core = openvino.Core()
        if "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            log.warning("this CPU has no native bf16: OpenVINO runs the index's bf16 embedder in fp32, slowly; "
                        "--backend onnx-int8 is faster here for a new index")
        config = {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": threads,
                  "PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": str(model_path.parent / "openvino-cache")}
        self._request = core.compile_model(str(model_path), "CPU", config).create_infer_request()
        self._lock = threading.Lock()

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            return np.array(self._request.infer(feeds)[0], dtype=np.float32, copy=True)
