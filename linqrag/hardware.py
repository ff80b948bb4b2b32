"""Facts about this machine that choose a numeric path (no torch import: cheap to ask)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

#: CPU flags of native bf16 matrix products (Intel AMX; AVX-512 BF16 on Intel and AMD).
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none: macOS, Windows)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """bf16 matrix products run in hardware here: on one thread of an AMX core they ran 8x fp32's
    (355 against 42 GFLOPS, bench/RESULTS.md); without these flags bf16 is emulated and slower."""
    return any(flag in cpu_flags() for flag in BF16_FLAGS)
