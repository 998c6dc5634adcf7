"""PyTorch backend: CPU (fp32) or CUDA (fp16, channels-last, buffers allocated once, CUDA-graph replay).

It runs the same PolypNet weights as the ONNX file: the checkpoint beside it (``MODEL.pt``) whose model id
must match the ONNX metadata.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engines.backends.protocol import BackendBase
from engines.errors import BackendError, ModelError

log = logging.getLogger(__name__)


def checkpoint_for(model_path: Path) -> Path:
    return model_path.with_suffix(".pt")


class TorchBackend(BackendBase):
    name = "torch"

    @classmethod
    def from_config(cls, engine_cfg, model_path: Path, meta) -> "TorchBackend":
        """Its options from the ``engine:`` section and the model's metadata (the registry calls this)."""
        return cls(model_path, device=engine_cfg.device, threads=engine_cfg.threads, model_id=meta.model_id,
                   score_output=meta.score_output, heatmap_output=meta.heatmap_output)

    def __init__(self, model_path: str | Path, device: str = "auto", threads: int = 0, cuda_graph: bool = True,
                 fp16: bool = True, checkpoint: str | Path | None = None, score_output: str = "score",
                 heatmap_output: str = "heatmap", model_id: str = ""):
        self.model_path = Path(model_path)
        self.checkpoint = Path(checkpoint) if checkpoint else checkpoint_for(self.model_path)
        self.device_name = device
        self.threads = threads
        self.cuda_graph = cuda_graph
        self.fp16 = fp16
        self.names = (score_output, heatmap_output)
        self.model_id = model_id
        self._net = None
        self._graph = None
        self._static_in = None
        self._static_out = None
        self._frame_graph = None

    def open(self) -> "TorchBackend":
        try:
            import torch
        except ImportError as e:
            raise BackendError(f"torch is not installed ({e})") from None
        from engines.model import ExportWrapper, load_weights
        dev = self.device_name
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("engine.device: 'cuda' was asked for but torch sees no CUDA GPU")
        self.device = torch.device(dev)
        if self.threads > 0:
            torch.set_num_threads(self.threads)
        if not self.checkpoint.is_file():
            raise ModelError(f"torch backend: checkpoint {self.checkpoint} not found (it sits beside the ONNX "
                             f"file with the same name and .pt)")
        net = load_weights(self.checkpoint, self.model_id, who="torch backend: checkpoint")
        net = ExportWrapper(net).eval().to(self.device, memory_format=torch.channels_last)
        self.half = self.fp16 and self.device.type == "cuda"
        self.numerics = "fp16" if self.half else "fp32"
        if self.half:
            net = net.half()
        self._net = net
        self._graph = None
        self._frame_graph = None
        return self

    def prepare_image(self, shape: tuple[int, ...], spec) -> None:
        """Warm-up: build the frame path (and its CUDA graphs) for every pyramid level of this frame size."""
        self._frame_graph_for(spec).prepare(shape)

    def _frame_graph_for(self, spec):
        import torch

        from engines.backends.frame_graph import FrameGraph
        if self._frame_graph is None:
            self._frame_graph = FrameGraph(self._net, spec, self.device, torch.float16 if self.half else torch.float32,
                                           self.names, self.cuda_graph)
        return self._frame_graph

    @property
    def graph_status(self) -> dict | None:
        """Whether the device frame path runs as CUDA graphs, and why not (run summary, written after close());
        None when unused."""
        if self._frame_graph is None:
            return getattr(self, "_closed_graph_status", None)
        return dict(self._frame_graph.graph_status)

    def infer_image(self, image: np.ndarray, area, spec) -> dict[str, np.ndarray]:
        """The whole frame path on the device: uint8 frame in, outputs out (engines/backends/frame_graph.py). On
        CUDA one graph per frame size holds upload, preprocessing, model and download; no float frame crosses PCIe."""
        try:
            return self._frame_graph_for(spec).run(image, area)
        except RuntimeError as e:
            raise BackendError(f"torch backend: inference failed ({e})") from None

    def _capture(self, batch: np.ndarray) -> None:
        import torch
        dtype = torch.float16 if self.half else torch.float32
        self._static_in = torch.zeros(batch.shape, dtype=dtype, device=self.device).contiguous(
            memory_format=torch.channels_last)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s), torch.no_grad():
            for _ in range(3):                      # warm-up outside the graph (cuDNN picks its kernels)
                self._net(self._static_in)
        torch.cuda.current_stream().wait_stream(s)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph), torch.no_grad():
            self._static_out = self._net(self._static_in)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self._net is None:
            raise BackendError("torch backend: infer() before open()")
        import torch
        try:
            if self.device.type == "cuda" and self.cuda_graph:
                if self._graph is None or tuple(self._static_in.shape) != batch.shape:
                    self._capture(batch)
                self._static_in.copy_(torch.from_numpy(batch), non_blocking=False)
                self._graph.replay()
                s, h = self._static_out
            else:
                x = torch.from_numpy(batch).to(self.device, memory_format=torch.channels_last)
                if self.half:
                    x = x.half()
                with torch.no_grad():
                    s, h = self._net(x)
            return {self.names[0]: s.float().cpu().numpy(), self.names[1]: h.float().cpu().numpy()}
        except RuntimeError as e:
            raise BackendError(f"torch backend: inference failed ({e})") from None

    def close(self) -> None:
        self._closed_graph_status = self.graph_status
        self._net = None
        self._graph = None
        self._frame_graph = None
        self._static_in = self._static_out = None
