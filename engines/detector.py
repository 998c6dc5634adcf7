"""Frame image -> ModelResult: the model's input contract (preprocessing), one backend call, its output contract
(postprocessing). The pipeline calls ``detect`` once per frame; nothing else crosses into the backends."""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from engines.backends import backend_from_config, resolve_backend_name
from engines.errors import ConfigError
from engines.runtime.area_watch import ActiveAreaTracker
from engines.runtime.metadata import ModelMetadata, read_onnx_metadata
from engines.runtime.model_files import resolve_model_path
from engines.runtime.postprocess import frame_heatmap, to_result
from engines.runtime.precision import choose_precision
from engines.runtime.preprocess import Preprocessed, crop_to_input, normalise, pyramid
from engines.runtime.result import ModelResult

log = logging.getLogger(__name__)


class Detector:
    """Owns the backend. ``with Detector(engine_cfg, preprocess_cfg) as det: det.detect(image)``."""

    def __init__(self, engine_cfg, preprocess_cfg):
        self.backend_name = resolve_backend_name(engine_cfg.backend, engine_cfg.engine_file)
        self.precision = choose_precision(resolve_model_path(engine_cfg.model), engine_cfg.precision,
                                          self.backend_name)
        self.model_path = self.precision.model_path
        self.meta: ModelMetadata = read_onnx_metadata(self.model_path)
        self.spec = self.meta.preprocess
        log.info("model %s, precision %s (%s): %s", self.meta.model_id, self.precision.precision,
                 self.precision.reason, self.model_path)
        self.backend = backend_from_config(self.backend_name, engine_cfg, self.model_path, self.meta)
        if self.backend.metadata is not None:          # a TensorRT int8 engine alerts at its twin's threshold
            self.meta = self.backend.metadata
        self._take_numerics()
        self.area = ActiveAreaTracker(self.spec, preprocess_cfg.active_area_every)
        self.on_device = engine_cfg.device_preprocess and hasattr(self.backend, "infer_image")
        if engine_cfg.device_preprocess and not self.on_device:
            raise ConfigError(f"engine.device_preprocess: expected false with backend {self.backend_name!r} "
                              f"(only the torch and TensorRT backends preprocess on the device), got true")

    def _take_numerics(self) -> None:
        """The precision that really runs, where the backend decides it (TensorRT: the engine's; torch: fp16 on CUDA):
        into every summary, metrics.json and QA report."""
        got = self.backend.numerics
        if got and got != self.precision.precision:
            self.precision = dataclasses.replace(self.precision, precision=got)
            log.info("precision %s (%s)", got, self.precision.reason)

    def __enter__(self) -> "Detector":
        self.backend.open()
        self._take_numerics()
        dummy = np.zeros((1, 3, self.spec.input_height, self.spec.input_width), np.float32)
        self.backend.infer(dummy)          # warm-up: first-call allocations happen before the first frame
        return self

    def __exit__(self, *exc) -> None:
        self.backend.close()

    def warm_up(self, shape: tuple[int, ...], batch: int = 0) -> dict:
        """Run the exact per-frame path on a frame of ``shape`` (a scope-like view: dark border, textured disc), so
        that lazy set-up (device preprocessing, graph capture for this frame size, first-call allocations) is done
        before the first real frame; ``batch``: through ``detect_batch`` with that many frames instead. The
        active-area state is reset afterwards. Returns the times in ms."""
        h, w = shape[:2]
        rng = np.random.default_rng(0)
        frame = np.zeros((h, w, 3), np.uint8)
        yy, xx = np.ogrid[:h, :w]
        disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= (0.45 * min(h, w)) ** 2
        frame[disc] = rng.integers(60, 200, (int(disc.sum()), 3), dtype=np.uint8)
        run = (lambda: self.detect_batch([frame] * batch)) if batch else (lambda: self.detect(frame))
        t0 = time.monotonic_ns()
        if self.on_device and not batch and hasattr(self.backend, "prepare_image"):
            self.backend.prepare_image(tuple(shape), self.spec)   # every pyramid level: any area, no build later
        run()
        t1 = time.monotonic_ns()
        run()
        t2 = time.monotonic_ns()
        self.area.reset()
        key = f"batch{batch}_" if batch else ""
        out = {f"{key}first_ms": round((t1 - t0) / 1e6, 2), f"{key}second_ms": round((t2 - t1) / 1e6, 2)}
        return out if batch else {"frame_shape": [h, w, 3], **out}

    @property
    def model_id(self) -> str:
        return self.meta.model_id

    def preprocess(self, image: np.ndarray) -> Preprocessed:
        """The shared preprocessing (``engines.runtime.preprocess.preprocess``) with the area kept between searches
        (engines/runtime/area_watch.py)."""
        crop, area = self.area.crop(image)
        return Preprocessed(tensor=normalise(crop, self.spec), area=area, frame_width=image.shape[1],
                            frame_height=image.shape[0])

    def detect_batch(self, images: list[np.ndarray], pool=None) -> list[ModelResult]:
        """Frames in order through one backend call (replay). Each frame gets exactly what ``detect`` would give
        it: the same pyramid, the same active-area schedule (decided in order), the same crop. ``pool``: an
        executor whose threads build pyramids and crops in parallel (OpenCV releases the GIL)."""
        spec = self.spec
        mapper = pool.map if pool is not None else map
        min_width = max(spec.analysis_width, spec.input_width)
        levels = list(mapper(lambda im: pyramid(im, min_width), images))
        areas = [self.area.area_for(im, lv) for im, lv in zip(images, levels)]      # in order: the schedule
        tensors = list(mapper(lambda job: normalise(crop_to_input(job[0], job[1], spec, job[2]), spec),
                              zip(images, areas, levels)))
        t1 = time.monotonic_ns()
        outputs = self.backend.infer(np.concatenate(tensors))
        t2 = time.monotonic_ns()
        results = []
        for i, (im, area) in enumerate(zip(images, areas)):
            pre = Preprocessed(tensor=tensors[i], area=area, frame_width=im.shape[1], frame_height=im.shape[0])
            score, boxes = to_result({k: v[i:i + 1] for k, v in outputs.items()}, pre, self.meta)
            results.append(ModelResult(score, boxes, t1, t2, time.monotonic_ns()))
        return results

    def detect(self, image: np.ndarray, heatmap: bool = False) -> ModelResult:
        """One HxWx3 uint8 BGR frame down through preprocessing, the backend and postprocessing, once.
        ``heatmap=True`` also returns the localisation heat map on the full frame (checks and reports, not live)."""
        if self.on_device:
            area = self.area.area_for(image)
            pre = Preprocessed(tensor=np.empty((1, 3, 0, 0), np.float32), area=area, frame_width=image.shape[1],
                               frame_height=image.shape[0])
            t1 = time.monotonic_ns()
            outputs = self.backend.infer_image(image, area, self.spec)   # preprocess + infer on the device
        else:
            pre = self.preprocess(image)
            t1 = time.monotonic_ns()
            outputs = self.backend.infer(pre.tensor)
        t2 = time.monotonic_ns()
        score, boxes = to_result(outputs, pre, self.meta)
        heat = frame_heatmap(outputs, pre, self.meta) if heatmap else None
        return ModelResult(score, boxes, t1, t2, time.monotonic_ns(), heatmap=heat)
