"""PolypNet -> ONNX (opset 17) with polypwatch metadata, checked against torch on sample inputs."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from engines.runtime.metadata import ModelMetadata, write_onnx_metadata

log = logging.getLogger(__name__)
OPSET = 17


def export_onnx(net, meta: ModelMetadata, path: str | Path, samples: np.ndarray | None = None) -> float:
    """Write ``path``; returns the max abs difference of both outputs between torch and ONNX Runtime."""
    import torch

    from engines.model import ExportWrapper
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = meta.preprocess
    wrapper = ExportWrapper(net).eval().to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(1, 3, spec.input_height, spec.input_width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (dummy,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[meta.input_name], output_names=[meta.score_output, meta.heatmap_output],
                          dynamic_axes={meta.input_name: {0: "batch"}, meta.score_output: {0: "batch"},
                                        meta.heatmap_output: {0: "batch"}})
    write_onnx_metadata(path, meta)
    if samples is None:
        samples = np.random.default_rng(0).standard_normal((4, 3, spec.input_height, spec.input_width)).astype(np.float32)
    return parity(wrapper, path, samples, meta)


def parity(wrapper, path: Path, samples: np.ndarray, meta: ModelMetadata) -> float:
    import torch

    from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    with torch.no_grad():
        ts, th = wrapper(torch.from_numpy(samples))
    with OnnxRuntimeBackend(path, threads=2) as be:
        worst = 0.0
        for i in range(len(samples)):
            out = be.infer(samples[i:i + 1])
            worst = max(worst, float(np.abs(out[meta.score_output] - ts[i:i + 1].numpy()).max()),
                        float(np.abs(out[meta.heatmap_output] - th[i:i + 1].numpy()).max()))
    log.info("ONNX export %s: max abs difference torch vs ONNX Runtime = %.2e", path, worst)
    return worst


def write_torch_checkpoint(net, meta: ModelMetadata, path: str | Path) -> None:
    """The weights for the torch backend, fp16 (half the size), tagged with the ONNX file's model id."""
    import torch
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    torch.save({"model_id": meta.model_id, "num_classes": int(net.num_classes),
                "backbone": getattr(net, "backbone", "efficientnet-lite0"), "head": getattr(net, "head", "pooled"),
                "state_dict": state}, str(path))
