"""One frame, one graph: uint8 frame in, model outputs out, on the torch device.

``FramePreprocess`` does the shared preprocessing (engines.runtime.preprocess) as a torch module: crop to the active
area and area-resize to the model input as two matrix products with OpenCV's INTER_AREA weights (the separable
box filter; for a crop smaller than the input, OpenCV's own two-tap enlarging coefficients), rounding to uint8 levels, the outline and corner mask, colour order,
normalisation. The crop offsets, the resize weights and the mask are *buffers* set from the ``ActiveArea``: a new
area changes buffer contents, never a shape, so the graph is captured once per frame size.

``FrameGraph`` runs it with the model. On CUDA, one CUDA graph holds: the copy of the frame from a pinned host
staging buffer into a static device buffer, the preprocessing, the model, and the copies of the outputs into
pinned host buffers; a frame costs one memcpy into the staging buffer, one graph launch and one synchronisation.
On the CPU (tests, parity) the same modules run eagerly.
"""
from __future__ import annotations

import contextlib
import logging
import time

import numpy as np

from engines.runtime.preprocess import ActiveArea, PreprocessSpec, crop_level, keep_mask, pyramid_depth

log = logging.getLogger(__name__)


def area_weights(start: int, stop: int, n_src: int, n_dst: int) -> np.ndarray:
    """(n_dst, n_src) float32: row i averages source pixels [start, stop) resized to n_dst by area (OpenCV's
    INTER_AREA when neither axis is enlarged); zero outside the crop."""
    w = np.zeros((n_dst, n_src), np.float32)
    length = stop - start
    scale = length / n_dst
    for i in range(n_dst):
        a, b = start + i * scale, start + (i + 1) * scale
        j0, j1 = int(np.floor(a)), int(np.ceil(b))
        for j in range(j0, min(j1, stop)):
            w[i, j] = min(b, j + 1) - max(a, j)
        w[i] /= scale
    return w


def area_upscale_weights(start: int, stop: int, n_src: int, n_dst: int) -> np.ndarray:
    """(n_dst, n_src) float32: OpenCV's INTER_AREA where an axis is enlarged. OpenCV then runs its bilinear
    resize with INTER_AREA's own two-tap coefficients on *both* axes (resize.cpp: sx = floor(dx * scale),
    fx = (dx + 1) - (sx + 1) / scale, taken modulo 1, clamped at the edge)."""
    w = np.zeros((n_dst, n_src), np.float32)
    length = stop - start
    scale, inv = length / n_dst, n_dst / length
    for dx in range(n_dst):
        sx = int(np.floor(dx * scale))
        fx = (dx + 1) - (sx + 1) * inv
        fx = 0.0 if fx <= 0 else fx - np.floor(fx)
        if sx >= length - 1:
            sx, fx = length - 1, 0.0
        w[dx, start + sx] += 1.0 - fx
        if fx:
            w[dx, start + sx + 1] += fx
    return w


def resize_weights(box: tuple[int, int, int, int], level_h: int, level_w: int, out_h: int, out_w: int,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) weight matrices of cv2.resize(INTER_AREA) of the crop ``box`` (x0, y0, x1, y1) to
    out_h x out_w: the area average where the crop is at least the output size on both axes, else OpenCV's
    enlarging path on both (small crops: within 1 grey level of OpenCV, tested)."""
    x0, y0, x1, y1 = box
    y1, x1 = min(y1, level_h), min(x1, level_w)
    make = area_weights if (y1 - y0 >= out_h and x1 - x0 >= out_w) else area_upscale_weights
    return make(y0, y1, level_h, out_h), make(x0, x1, level_w, out_w)


def crop_on_level(area: ActiveArea, spec: PreprocessSpec, frame_h: int, frame_w: int) -> tuple[int, tuple]:
    """The CPU path's choice for this area: pyramid level k and the crop box in that level's pixels."""
    return crop_level(area, spec, pyramid_depth(frame_h, frame_w, spec))


@contextlib.contextmanager
def restoring_stream(torch):
    """torch's current CUDA stream as it was, whatever happens inside: a failed capture raises from
    ``torch.cuda.graph.__exit__`` before it leaves the capture stream (its graph and pool go with the graph object)."""
    before = torch.cuda.current_stream()
    try:
        yield
    finally:
        if torch.cuda.current_stream() != before:
            torch.cuda.set_stream(before)


class FramePreprocess:
    """``FramePreprocess(spec, frame_h, frame_w, level, device, dtype)``: a torch.nn.Module for one frame size and
    one pyramid level (built lazily: torch is imported only where a device backend is used).

    forward: (frame_h, frame_w, 3) uint8 BGR -> 1x3xHxW normalised input. As the CPU path: halve ``level`` times
    with rounding to uint8 levels (OpenCV's exact-half INTER_LINEAR is the 2x2 mean), crop and area-resize (two
    matrix products with buffers set by ``set_area``), round, mask, colour order, normalise."""

    def __new__(cls, spec: PreprocessSpec, frame_h: int, frame_w: int, level: int, device, dtype):
        import torch
        F = torch.nn.functional

        class _Module(torch.nn.Module):
            def __init__(self):
                super().__init__()
                H, W = spec.input_height, spec.input_width
                self.spec, self.frame_h, self.frame_w, self.level = spec, frame_h, frame_w, level
                self.lh, self.lw = frame_h >> level, frame_w >> level
                self.flip = spec.color_order == "RGB"            # frames are BGR
                self.register_buffer("ry", torch.zeros(H, self.lh, device=device))
                self.register_buffer("rx_t", torch.zeros(self.lw, W, device=device))
                self.register_buffer("mask", torch.zeros(1, 1, H, W, device=device))
                self.register_buffer("mean", torch.tensor(list(spec.mean), device=device).view(1, 3, 1, 1))
                self.register_buffer("inv_std", (1.0 / torch.tensor(list(spec.std), device=device)).view(1, 3, 1, 1))
                self.out_dtype = dtype
                self.area_key = None

            def set_area(self, area: ActiveArea) -> bool:
                """Point the buffers at a new active area (of this level); False if it is the one already set."""
                key = (area.x0, area.y0, area.x1, area.y1, area.polygon.tobytes())
                if key == self.area_key:
                    return False
                s = self.spec
                k, box = crop_on_level(area, s, self.frame_h, self.frame_w)
                if k != self.level:
                    raise ValueError(f"FramePreprocess: area needs pyramid level {k}, this module is level {self.level}")
                ry, rx = resize_weights(box, self.lh, self.lw, s.input_height, s.input_width)
                with torch.no_grad():
                    self.ry.copy_(torch.from_numpy(ry))
                    self.rx_t.copy_(torch.from_numpy(rx.T))
                    self.mask.copy_(torch.from_numpy(keep_mask(area, s).astype(np.float32)).view(self.mask.shape))
                self.area_key = key
                return True

            def forward(self, frame_u8):                          # (frame_h, frame_w, 3) uint8, BGR
                x = frame_u8.permute(2, 0, 1).unsqueeze(0).float()  # 1x3xhxw
                for _ in range(self.level):                        # the CPU path's pyramid, rounded per level
                    h2, w2 = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
                    x = torch.floor(F.avg_pool2d(x[:, :, :h2, :w2], 2) + 0.5)
                x = torch.matmul(torch.matmul(self.ry, x), self.rx_t)   # crop + area resize -> 1x3xHxW, BGR
                x = torch.floor(x + 0.5) * self.mask               # uint8 levels, outline and corner mask
                if self.flip:
                    x = x.flip(1)     # no index tensor: nothing may be copied from pageable memory inside a capture
                x = (x - self.mean) * self.inv_std
                return x.to(self.out_dtype).contiguous(memory_format=torch.channels_last)

        return _Module()


class FrameGraph:
    """Frame -> outputs; ``run(image, area)`` -> {name: array}. One entry (module, and on CUDA its graph) per frame
    size and pyramid level; ``prepare(shape)`` builds every level of a frame size (warm-up), so a real frame never
    waits on a build. ``builds`` counts them; ``capture_ms`` is the last one's cost."""

    def __init__(self, net, spec: PreprocessSpec, device, dtype, names: tuple[str, ...], use_graph: bool,
                 stream_context=contextlib.nullcontext):
        """``net(x) -> tuple of output tensors`` in the order of ``names`` (a torch module, or TensorRT through
        the backend's own adapter). ``stream_context()``: where the eager path runs (TensorRT: its own stream)."""
        self.net, self.spec, self.device, self.dtype, self.names = net, spec, device, dtype, names
        self.stream_context, self.use_graph = stream_context, use_graph and device.type == "cuda"
        self.graph_status = {"cuda_graph": self.use_graph, "fallback": ""}   # into the run summary
        self.host_in = None
        self.shape: tuple[int, ...] = ()
        self.entries: dict[int, dict] = {}
        self._area: ActiveArea | None = None     # the area the current entry's buffers are set for
        self._entry: dict | None = None
        self.builds = 0
        self.capture_ms = 0.0

    def prepare(self, shape: tuple[int, ...]) -> None:
        """Everything for this frame size, every pyramid level an area could need."""
        self._new_shape(shape)
        for k in range(pyramid_depth(shape[0], shape[1], self.spec)):
            if k not in self.entries:
                self._build(k)

    def _new_shape(self, shape: tuple[int, ...]) -> None:
        if shape == self.shape:
            return
        self.shape, self.entries = shape, {}
        self._area = self._entry = None
        self.host_in = None                      # the staging buffers of a graph: made by the first capture

    def _build(self, level: int) -> dict:
        t0 = time.monotonic()
        h, w = self.shape[:2]
        pre = FramePreprocess(self.spec, h, w, level, self.device, self.dtype)
        entry = {"pre": pre, "graph": None}
        if self.use_graph:
            try:
                entry.update(self._capture(pre))
            except Exception as e:  # an engine with operations not allowed under capture: plain enqueue (trtexec too)
                self._fall_back(e)
        self.entries[level] = entry
        self.builds += 1
        self.capture_ms = (time.monotonic() - t0) * 1e3
        log.info("frame path for %dx%d, pyramid level %d, built in %.1f ms (%s)", w, h, level, self.capture_ms,
                 "CUDA graph" if entry["graph"] is not None else f"eager on {self.device}")
        return entry

    def _fall_back(self, e: Exception) -> None:
        """Capture failed: every frame size runs eagerly (plain enqueue) from now on; said in the run summary."""
        log.warning("CUDA graph capture failed (%s: %s): the frame path runs without a graph", type(e).__name__, e)
        self.use_graph = False
        self.graph_status.update(cuda_graph=False, fallback=f"{type(e).__name__}: {e}"[:300])
        for entry in self.entries.values():
            entry["graph"] = None

    def _capture(self, pre) -> dict:
        """The CUDA graph of one module with the model: H2D copy, preprocessing, model, D2H copies."""
        import torch
        if self.host_in is None:
            h, w = self.shape[:2]
            self.host_in = torch.zeros((h, w, 3), dtype=torch.uint8).pin_memory()
            self.host_in_np = self.host_in.numpy()
            self.dev_in = torch.zeros((h, w, 3), dtype=torch.uint8, device=self.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(3):          # cuDNN/cuBLAS/TensorRT choose their kernels outside the graph
                self.net(pre(self.dev_in))
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            outs = self.net(pre(self.dev_in))
        host_out = [torch.zeros(o.shape, dtype=torch.float32).pin_memory() for o in outs]
        graph = torch.cuda.CUDAGraph()
        with restoring_stream(torch):
            with torch.cuda.graph(graph), torch.no_grad():
                self.dev_in.copy_(self.host_in, non_blocking=True)           # H2D from pinned staging
                outs = self.net(pre(self.dev_in))
                for host, o in zip(host_out, outs):
                    host.copy_(o.float(), non_blocking=True)                 # D2H into pinned memory
        torch.cuda.synchronize()
        return {"graph": graph, "host_out": host_out}

    def run(self, image: np.ndarray, area: ActiveArea) -> dict[str, np.ndarray]:
        import torch
        self._new_shape(image.shape)
        if area is not self._area:           # the Detector hands over the same object until it searches again
            k, _ = crop_on_level(area, self.spec, image.shape[0], image.shape[1])
            entry = self.entries.get(k) or self._build(k)
            entry["pre"].set_area(area)      # buffer contents only (outside the graph, before its launch)
            self._area, self._entry = area, entry
        entry = self._entry
        if entry["graph"] is None:
            with self.stream_context(), torch.no_grad():
                outs = self.net(entry["pre"](torch.from_numpy(np.ascontiguousarray(image)).to(self.device)))
                return {n: o.float().cpu().numpy() for n, o in zip(self.names, outs)}
        np.copyto(self.host_in_np, image)    # the one host-side copy, into pinned memory
        entry["graph"].replay()
        torch.cuda.current_stream().synchronize()
        return {n: h.numpy().copy() for n, h in zip(self.names, entry["host_out"])}
