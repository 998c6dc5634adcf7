"""The model being commissioned: the network (from the checkpoint beside the ONNX file) and its metadata."""
from __future__ import annotations

from pathlib import Path

from engines.errors import ModelError
from engines.runtime.metadata import read_onnx_metadata


def load_model(model: str | Path):
    """(PolypNet in eval mode, its ONNX metadata) from an ONNX file and the checkpoint beside it (``.pt``)."""
    from engines.backends.torch_backend import checkpoint_for
    from engines.model import load_weights
    model = Path(model)
    meta = read_onnx_metadata(model)
    ckpt = checkpoint_for(model)
    if not ckpt.is_file():
        raise ModelError(f"commissioning needs the weights beside the ONNX file: {ckpt} not found")
    net = load_weights(ckpt, meta.model_id, strict=True)
    if net.num_classes != 1:
        raise ModelError(f"model {meta.model_id}: commissioning handles polyp-score models only (1 output)")
    return net.eval(), meta
