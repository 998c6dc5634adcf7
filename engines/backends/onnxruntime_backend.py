"""ONNX Runtime on the CPU: the embedded default backend."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engines.backends.protocol import BackendBase
from engines.errors import BackendError, ModelError

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")   # before onnxruntime is imported


class OnnxRuntimeBackend(BackendBase):
    name = "onnxruntime"

    @classmethod
    def from_config(cls, engine_cfg, model_path: Path, meta) -> "OnnxRuntimeBackend":
        """Its options from the ``engine:`` section (the registry calls this; no caller branches on the name)."""
        return cls(model_path, threads=engine_cfg.threads, spin=engine_cfg.spin_wait)

    def __init__(self, model_path: str | Path, threads: int = 0, providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 spin: bool = True):
        self.model_path = Path(model_path)
        self.threads = threads
        self.spin = spin       # lab callers infer back to back, where spinning costs little; live runs take
                               # engine.spin_wait (false: at 30 fps spinning burnt ~0.9 core, docs/BENCHMARKS.md)
        self.providers = providers
        self._session = None
        self._input = ""
        self._outputs: list[str] = []

    def open(self) -> "OnnxRuntimeBackend":
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendError(f"onnxruntime is not installed ({e}); pip install onnxruntime") from None
        if not self.model_path.is_file():
            raise ModelError(f"model {self.model_path}: file not found")
        so = ort.SessionOptions()
        if self.threads > 0:
            so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        if not self.spin:       # idle workers sleep instead of spinning: the capture thread keeps its core
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(self.model_path), sess_options=so, providers=list(self.providers))
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(f"model {self.model_path}: ONNX Runtime cannot load it ({e})") from None
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        return self

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self._session is None:
            raise BackendError("onnxruntime backend: infer() before open()")
        try:
            values = self._session.run(self._outputs, {self._input: batch})
        except Exception as e:
            raise BackendError(f"onnxruntime: inference failed ({e})") from None
        return dict(zip(self._outputs, values))

    def close(self) -> None:
        self._session = None
