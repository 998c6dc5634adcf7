"""What this CPU offers the model: its name, generation and the instruction sets that decide whether INT8 is faster.

INT8 convolutions in ONNX Runtime's CPU kernels are fast where the CPU has an 8-bit dot-product instruction: AVX-512
VNNI (Intel Cascade Lake and later, AMD Zen 4 and later), AVX-VNNI (Intel Alder Lake and later) or AMX. On AVX2 alone
they multiply in 16 bits and gain little over fp32 (session 1 measured this machine family without VNNI).
"""
from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class CpuInfo:
    model: str                       # "Intel(R) Xeon(R) ...", "AMD EPYC"
    family_model: str                # "25/17": tells generations of one name apart
    flags: frozenset[str]

    @property
    def int8_dot(self) -> str:
        """The 8-bit dot-product instruction set this CPU has ('' = none)."""
        return next((f for f in INT8_DOT_FLAGS if f in self.flags), "")

    def summary(self) -> dict:
        return {"cpu": self.model, "cpu_family_model": self.family_model, "avx2": "avx2" in self.flags,
                "avx512": "avx512f" in self.flags, "int8_dot": self.int8_dot or None}


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor of a /proc/cpuinfo text."""
    first = text.split("\n\n", 1)[0]
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}
    return CpuInfo(fields.get("model name", platform.processor() or "unknown"),
                   f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}", frozenset(fields.get("flags", "").split()))


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:                  # not Linux: the flags are unknown, so INT8 is never chosen on its own
        return CpuInfo(platform.processor() or "unknown", "?", frozenset())
