"""The INT8 twin of a model for ONNX Runtime on the CPU: static QDQ quantisation, calibrated on real frames.

ONNX Runtime's own tools (``onnxruntime.quantization``): the fp32 graph is pre-processed (shape inference, constant
folding), calibrated on preprocessed frames (``engines.compile.calibration``: the training split of every source, never
a validation or test frame), and quantised in QDQ form with per-channel int8 weights and uint8 activations, the form
whose convolutions ONNX Runtime runs on VNNI. The head stays fp32: the heat-map convolution, the pooling, the
classifier and both sigmoids, so that the outputs are floats (a uint8 score would move in steps of 1/255, coarser
than any threshold needs). Further nodes can be kept in fp32 where a layer breaks parity (``exclude``).

The twin is written beside the fp32 file as ``<name>.int8.onnx`` with the fp32 model's metadata (same preprocessing,
outputs, threshold unless given) plus ``precision: int8`` and what made it (``quantization``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.compile.calibration import CalibrationSet, calibration_batches
from engines.compile.network_onnx import tensorrt_twin
from engines.errors import ModelError
from engines.runtime.metadata import read_onnx_metadata, write_onnx_metadata
from engines.runtime.precision import int8_twin

log = logging.getLogger(__name__)
HEAD_OPS = ("Sigmoid", "Gemm", "ReduceMean", "ReduceMax", "Squeeze")
METHODS = ("minmax", "percentile", "entropy")
TARGETS = ("onnxruntime", "tensorrt")
COMPUTE_OPS = ("Conv", "Gemm", "Sigmoid", "ReduceMean", "ReduceMax", "Add")     # the kept nodes worth recording


@dataclass(frozen=True)
class QuantizeOptions:
    onnx: Path
    calibration: CalibrationSet
    out: Path | None = None              # None: the twin's place beside the fp32 file
    count: int = 300                     # calibration frames
    method: str = "minmax"
    exclude: tuple[str, ...] = ()        # more nodes kept in fp32: names, or prefixes ending in * (matching_nodes)
    threshold: float = 0.0               # 0: the fp32 model's
    target: str = "onnxruntime"          # onnxruntime: uint8 activations | tensorrt: symmetric int8 (zero point 0)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"--for: expected one of {list(TARGETS)}, got {self.target!r}")
        if self.method not in METHODS:
            raise ValueError(f"--method: expected one of {list(METHODS)}, got {self.method!r}")
        if self.count < 1:
            raise ValueError(f"--count: expected at least 1 calibration frame, got {self.count}")
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"--threshold: expected 0 (the fp32 model's) or a value in (0, 1), got {self.threshold}")


TENSORRT_PLACEMENT = ("Q/DQ on the inputs of weighted layers and residual adds (NVIDIA's placement guidance): no "
                      "Q/DQ on Conv/Gemm outputs or around Clip (ReLU6), which TensorRT fuses into the conv")
NO_OUTPUT_QDQ = ("Conv", "Gemm")


def tensorrt_placement(graph) -> tuple[list[str], dict]:
    """(op types to quantise, ONNX Runtime's extra options) for TensorRT's explicit quantisation: symmetric int8,
    fp32 biases, every op type but Clip quantised on its inputs, conv and gemm outputs left for TensorRT to fuse."""
    ops = sorted({n.op_type for n in graph.node} - {"Clip"})
    return ops, {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                 "OpTypesToExcludeOutputQuantization": list(NO_OUTPUT_QDQ)}


def qdq_layout(model) -> dict:
    """Node counts of a Q/DQ graph: Q, DQ, and the Clip nodes that read a DequantizeLinear (a ReLU6 quantised
    before it)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    clips = [n for n in model.graph.node if n.op_type == "Clip"]
    return {"QuantizeLinear": sum(n.op_type == "QuantizeLinear" for n in model.graph.node),
            "DequantizeLinear": sum(n.op_type == "DequantizeLinear" for n in model.graph.node),
            "Clip": len(clips),
            "Clip_reading_DequantizeLinear": sum(1 for n in clips if getattr(producer.get(n.input[0]), "op_type", "")
                                                 == "DequantizeLinear")}


def head_nodes(graph) -> list[str]:
    """The nodes after the backbone that stay fp32: the pooling, classifier and sigmoids, and the convolution whose
    output a sigmoid reads (the heat map's, which the score's pooling reads too)."""
    producer = {o: n for n in graph.node for o in n.output}
    head = [n.name for n in graph.node if n.op_type in HEAD_OPS]
    for n in graph.node:
        if n.op_type == "Sigmoid" and n.input[0] in producer and producer[n.input[0]].op_type == "Conv":
            head.append(producer[n.input[0]].name)
    return head


def matching_nodes(graph, patterns: tuple[str, ...], model_name: str = "the model") -> list[str]:
    """The nodes named by ``patterns``: a node's name, or a prefix ending in ``*`` (``/net/blocks16.0/*``: a whole
    block). A pattern that names no node is an error."""
    names = [n.name for n in graph.node]
    out = []
    for pat in patterns:
        hits = [n for n in names if n.startswith(pat[:-1])] if pat.endswith("*") else [n for n in names if n == pat]
        if not hits:
            raise ValueError(f"--exclude: no node {pat!r} in {model_name} (after pre-processing); e.g. "
                             f"{[n.name for n in graph.node if n.op_type == 'Conv'][:3]}")
        out += hits
    return out


def _reader(batches: list[np.ndarray], input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{input_name: b} for b in batches])

        def get_next(self):
            return next(self._it, None)
    return Frames()


def quantize_model(opts: QuantizeOptions) -> dict:
    """Write the INT8 twin; returns what was done (also in the twin's metadata, ``quantization``)."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    meta = read_onnx_metadata(opts.onnx)
    if meta.precision != "fp32":
        raise ModelError(f"model {opts.onnx}: already {meta.precision}; quantise its fp32 model")
    tensorrt = opts.target == "tensorrt"
    out = opts.out or (tensorrt_twin(opts.onnx) if tensorrt else int8_twin(opts.onnx))
    batches = list(calibration_batches(opts.calibration, meta.preprocess, opts.count, 1))
    log.info("calibration: %d frames (%s)", len(batches), opts.calibration.name)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(opts.onnx), str(pre))
        graph = onnx.load(str(pre)).graph
        kept = sorted(set(head_nodes(graph)) | set(matching_nodes(graph, opts.exclude, opts.onnx.name)))
        op_of = {n.name: n.op_type for n in graph.node}
        method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                  "entropy": CalibrationMethod.Entropy}[opts.method]
        ops, extra = tensorrt_placement(graph) if tensorrt else (None, {})
        quantize_static(str(pre), str(out), _reader(batches, meta.input_name), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8 if tensorrt else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=kept, calibrate_method=method,
                        op_types_to_quantize=ops, extra_options=extra)
    record = {"fp32_model": opts.onnx.name, "fp32_sha256": _sha256(opts.onnx),
              "calibration": {**opts.calibration.describe(), "frames": len(batches)},
              "method": opts.method, "target": opts.target,
              "format": "QDQ, per-channel int8 weights, " + ("symmetric int8 activations, fp32 biases (for TensorRT)"
                                                            if tensorrt else "uint8 activations"),
              **({"placement": TENSORRT_PLACEMENT} if tensorrt else {}),
              "kept_fp32_patterns": list(opts.exclude), "kept_fp32": [n for n in kept if op_of[n] in COMPUTE_OPS],
              "onnxruntime": onnxruntime.__version__}
    twin = dataclasses.replace(meta, precision="int8", quantization=record,
                               threshold=opts.threshold or meta.threshold)
    write_onnx_metadata(out, twin)
    record["out"] = str(out)
    record["layout"] = qdq_layout(onnx.load(str(out)))
    record["check"] = score_difference(opts.onnx, out, batches[:64], meta.input_name, meta.score_output)
    log.info("INT8 twin %s: |score difference| on %d calibration frames max %.4f, mean %.4f", out,
             record["check"]["frames"], record["check"]["max_abs_score_diff"], record["check"]["mean_abs_score_diff"])
    return record


def score_difference(fp32: Path, int8: Path, batches: list[np.ndarray], input_name: str, score: str) -> dict:
    """fp32 against INT8 frame scores on the same inputs (a sanity check; parity is measured with tools/evaluate)."""
    from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    with OnnxRuntimeBackend(fp32, threads=2) as a, OnnxRuntimeBackend(int8, threads=2) as b:
        d = np.array([abs(float(a.infer(x)[score].ravel()[0]) - float(b.infer(x)[score].ravel()[0])) for x in batches])
    return {"frames": len(d), "max_abs_score_diff": round(float(d.max()), 5) if len(d) else None,
            "mean_abs_score_diff": round(float(d.mean()), 5) if len(d) else None}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
