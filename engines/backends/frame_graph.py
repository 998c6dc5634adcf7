"""One frame, one graph: uint8 frame in, model outputs out, on the torch device.

``FramePreprocess`` does the shared preprocessing (engines.runtime.preprocess) as a torch module: crop to the active
area and area-resize to the model input as two matrix products with area-averaging weight matrices (the
separable box filter of OpenCV's INTER_AREA), rounding to uint8 levels, the outline and corner mask, colour order,
normalisation. The crop offsets, the resize weights and the mask are *buffers* set from the ``ActiveArea``: a new
area changes buffer contents, never a shape, so the graph is captured once per frame size.

``FrameGraph`` runs it with the model. On CUDA, one CUDA graph holds: the copy of the frame from a pinned host
staging buffer into a static device buffer, the preprocessing, the model, and the copies of the outputs into
pinned host buffers; a frame costs one memcpy into the staging buffer, one graph launch and one synchronisation.
On the CPU (tests, parity) the same modules run eagerly.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from engines.runtime.preprocess import ActiveArea, PreprocessSpec, crop_level, keep_mask, pyramid_depth

log = logging.getLogger(__name__)


def area_weights(start: int, stop: int, n_src: int, n_dst: int) -> np.ndarray:
    """(n_dst, n_src) float32: row i averages source pixels [start, stop) resized to n_dst by area (INTER_AREA);
    zero outside the crop. Up-scaling (a crop smaller than the input) takes the covering source pixel."""
    w = np.zeros((n_dst, n_src), np.float32)
    length = stop - start
    scale = length / n_dst
    if scale <= 1.0:
        idx = start + np.minimum((np.arange(n_dst) * scale).astype(int), length - 1)
        w[np.arange(n_dst), idx] = 1.0
        return w
    for i in range(n_dst):
        a, b = start + i * scale, start + (i + 1) * scale
        j0, j1 = int(np.floor(a)), int(np.ceil(b))
        for j in range(j0, min(j1, stop)):
            w[i, j] = min(b, j + 1) - max(a, j)
        w[i] /= scale
    return w


class FramePreprocess:
    """Built lazily as a torch.nn.Module subclass (torch is imported only where this backend is used)."""

    def __new__(cls, spec: PreprocessSpec, frame_h: int, frame_w: int, device, dtype):
        import torch

        class _Module(torch.nn.Module):
            def __init__(self):
                super().__init__()
                H, W = spec.input_height, spec.input_width
                self.spec, self.frame_h, self.frame_w = spec, frame_h, frame_w
                order = [2, 1, 0] if spec.color_order == "RGB" else [0, 1, 2]
                self.order = order
                self.register_buffer("ry", torch.zeros(H, frame_h, device=device))
                self.register_buffer("rx_t", torch.zeros(frame_w, W, device=device))
                self.register_buffer("mask", torch.zeros(1, 1, H, W, device=device))
                self.register_buffer("mean", torch.tensor([spec.mean[i] for i in range(3)], device=device).view(1, 3, 1, 1))
                self.register_buffer("inv_std", (1.0 / torch.tensor(spec.std, device=device)).view(1, 3, 1, 1))
                self.out_dtype = dtype
                self.area_key = None

            def set_area(self, area: ActiveArea) -> bool:
                """Point the buffers at a new active area; False if it is the one already set."""
                key = (area.x0, area.y0, area.x1, area.y1, area.polygon.tobytes())
                if key == self.area_key:
                    return False
                s = self.spec
                # the crop box of the CPU path (taken from a pyramid level: its corners fall on that level's pixels)
                k, (x0, y0, x1, y1) = crop_level(area, s, pyramid_depth(self.frame_h, self.frame_w, s))
                x0, y0, x1, y1 = x0 << k, y0 << k, min(x1 << k, self.frame_w), min(y1 << k, self.frame_h)
                with torch.no_grad():
                    self.ry.copy_(torch.from_numpy(area_weights(y0, y1, self.frame_h, s.input_height)))
                    self.rx_t.copy_(torch.from_numpy(area_weights(x0, x1, self.frame_w, s.input_width).T))
                    self.mask.copy_(torch.from_numpy(keep_mask(area, s).astype(np.float32)).view(self.mask.shape))
                self.area_key = key
                return True

            def forward(self, frame_u8):                         # (frame_h, frame_w, 3) uint8, BGR
                h, w = self.frame_h, self.frame_w
                x = frame_u8.float().reshape(h, w * 3)
                x = (self.ry @ x).reshape(-1, w, 3)                # rows: crop + area resize -> (H, w, 3)
                x = x.permute(2, 0, 1) @ self.rx_t                 # columns -> (3, H, W), BGR
                x = torch.floor(x + 0.5).unsqueeze(0) * self.mask  # uint8 levels, outline and corner mask
                x = x[:, self.order]
                x = (x - self.mean) * self.inv_std
                return x.to(self.out_dtype).contiguous(memory_format=torch.channels_last)

        return _Module()


class FrameGraph:
    """Frame -> outputs for one frame size; ``run(image, area)`` -> {name: array}. ``capture_ms``: the last
    (re)build's cost (a new frame size), which warm-up pays before the first real frame."""

    def __init__(self, net, spec: PreprocessSpec, device, dtype, names: tuple[str, ...], use_graph: bool):
        """``net(x) -> tuple of output tensors`` in the order of ``names`` (a torch module, or TensorRT through
        the backend's own adapter)."""
        self.net, self.spec, self.device, self.dtype, self.names = net, spec, device, dtype, names
        self.use_graph = use_graph and device.type == "cuda"
        self.shape: tuple[int, ...] = ()
        self.builds = 0
        self.capture_ms = 0.0

    def _build(self, shape: tuple[int, ...]) -> None:
        import torch
        t0 = time.monotonic()
        h, w = shape[:2]
        self.pre = FramePreprocess(self.spec, h, w, self.device, self.dtype)
        self.shape = shape
        self.graph = None
        if self.use_graph:
            self.host_in = torch.zeros((h, w, 3), dtype=torch.uint8).pin_memory()
            self.host_in_np = self.host_in.numpy()
            self.dev_in = torch.zeros((h, w, 3), dtype=torch.uint8, device=self.device)
            self.pre.set_area(ActiveArea(0, 0, w, h, np.array([[0, 0], [w, 0], [w, h], [0, h]], np.int32)))
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.no_grad():
                for _ in range(3):          # cuDNN/cuBLAS/TensorRT choose their kernels outside the graph
                    self.net(self.pre(self.dev_in))
            torch.cuda.current_stream().wait_stream(side)
            with torch.no_grad():
                outs = self.net(self.pre(self.dev_in))
            self.host_out = [torch.zeros(o.shape, dtype=torch.float32).pin_memory() for o in outs]
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph), torch.no_grad():
                self.dev_in.copy_(self.host_in, non_blocking=True)           # H2D from pinned staging
                outs = self.net(self.pre(self.dev_in))
                for host, o in zip(self.host_out, outs):
                    host.copy_(o.float(), non_blocking=True)                 # D2H into pinned memory
            torch.cuda.synchronize()
        self.builds += 1
        self.capture_ms = (time.monotonic() - t0) * 1e3
        log.info("frame graph for %dx%d built in %.1f ms (%s)", w, h, self.capture_ms,
                 "CUDA graph" if self.graph is not None else f"eager on {self.device}")

    def run(self, image: np.ndarray, area: ActiveArea) -> dict[str, np.ndarray]:
        import torch
        if image.shape != self.shape:
            self._build(image.shape)
        self.pre.set_area(area)              # buffer contents only (outside the graph, before its launch)
        if self.graph is None:
            with torch.no_grad():
                outs = self.net(self.pre(torch.from_numpy(np.ascontiguousarray(image)).to(self.device)))
            return {n: o.float().cpu().numpy() for n, o in zip(self.names, outs)}
        np.copyto(self.host_in_np, image)    # the one host-side copy, into pinned memory
        self.graph.replay()
        torch.cuda.current_stream().synchronize()
        return {n: h.numpy().copy() for n, h in zip(self.names, self.host_out)}
