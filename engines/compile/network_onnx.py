"""The ONNX a TensorRT network is built from, one per precision. TensorRT 11 removed the builder's precision flags
(``BuilderFlag.FP16``/``INT8``) and the implicit-INT8 calibrators: a network is *strongly typed*, its precision is
the ONNX file's own.

- fp32: the model itself.
- fp16: the model converted to mixed precision on the CPU (onnxconverter-common's float16 pass: fp16 weights and
  activations, fp32 inputs and outputs, the polypwatch metadata kept), its scores checked against the fp32 model on
  the check frames before TensorRT sees it.
- int8: the explicitly quantised Q/DQ twin that ``tools/quantize --for tensorrt`` makes (symmetric int8: TensorRT
  runs only zero-point-0 int8 Q/DQ; ONNX Runtime's default uint8 twin is refused with that message), checked to be
  the twin of this very model.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from engines.backends.engine_sidecar import sha256_file
from engines.errors import PolypwatchError
from engines.runtime.metadata import read_onnx_metadata
from engines.runtime.precision import twin_path

log = logging.getLogger(__name__)
TENSORRT_TWIN_SUFFIX = ".int8-trt.onnx"


class NetworkError(PolypwatchError):
    """The ONNX for a precision cannot be made or is not fit for TensorRT."""


def tensorrt_twin(model_path: Path) -> Path:
    """Where ``tools/quantize --for tensorrt`` writes the symmetric int8 Q/DQ twin of ``model_path``."""
    return twin_path(model_path, TENSORRT_TWIN_SUFFIX)


def scores(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    """The score output of a model on preprocessed frames, one frame a call (ONNX Runtime, CPU)."""
    import onnxruntime as ort
    meta = read_onnx_metadata(onnx_path)
    s = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run([meta.score_output], {meta.input_name: x[i:i + 1]})[0].reshape(-1)
                           for i in range(len(x))])


def convert_fp16(onnx_path: Path, out: Path, frames: np.ndarray, tolerance: float) -> dict:
    """Write the mixed-precision fp16 twin of ``onnx_path`` to ``out``; its parity with fp32 on ``frames``
    (max |score difference|) must be within ``tolerance``, else NetworkError (and nothing is left at ``out``)."""
    try:
        import onnx
        from onnxconverter_common import float16
    except ImportError:
        raise NetworkError("--precision fp16 needs onnxconverter-common (pip install 'polypwatch[compile]')") from None
    model = onnx.load(str(onnx_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # "the float32 number ... will be truncated": tiny weights to fp16
        half = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(out))
    ref, got = scores(onnx_path, frames), scores(out, frames)
    diff = float(np.abs(ref - got).max())
    check = {"frames": int(len(frames)), "max_abs_score_diff": round(diff, 6), "tolerance": tolerance,
             "passed": diff <= tolerance, "converter": "onnxconverter-common float16 (keep_io_types)"}
    log.info("fp16 ONNX %s: max |score diff| vs fp32 %.2e on %d frames", out, diff, len(frames))
    if not check["passed"]:
        out.unlink(missing_ok=True)
        raise NetworkError(f"the fp16 conversion of {onnx_path.name} differs from fp32 by {diff:.3g} > tolerance "
                           f"{tolerance} on {len(frames)} frames: build fp32, or check the model's fp16 range")
    return check


def check_qdq_twin(twin: Path, fp32: Path) -> None:
    """The Q/DQ twin must exist, be the twin of ``fp32`` and hold only symmetric int8 Q/DQ (zero point 0)."""
    import onnx
    if not twin.is_file():
        raise NetworkError(f"--precision int8: no Q/DQ twin at {twin}; make it with `tools/quantize --for tensorrt "
                           f"--model {fp32} --data-root ...` (explicit quantisation; TensorRT 11 has no calibrator)")
    meta = read_onnx_metadata(twin)
    made_from = (meta.quantization or {}).get("fp32_sha256")
    if made_from != sha256_file(fp32):
        raise NetworkError(f"{twin.name}: not the quantised twin of {fp32.name} (its fp32_sha256 is "
                           f"{str(made_from)[:12]}, the model's {sha256_file(fp32)[:12]}); quantise this model again")
    bad = qdq_problems(onnx.load(str(twin)))
    if bad:
        raise NetworkError(f"{twin.name}: {len(bad)} Q/DQ node(s) TensorRT cannot run as symmetric int8, e.g. {bad[0]}; "
                           f"TensorRT runs only symmetric int8 Q/DQ (zero point 0, weights in [-127, 127] per output "
                           f"channel): make the TensorRT twin with `tools/quantize --for tensorrt`")


def _constants(model) -> dict:
    """Every constant tensor of the graph: initializers and the outputs of Constant nodes."""
    from onnx import numpy_helper
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            value = next((a for a in n.attribute if a.name == "value"), None)
            if value is not None:
                consts[n.output[0]] = numpy_helper.to_array(value.t)
    return consts


def qdq_problems(model) -> list[str]:
    """What keeps a Q/DQ graph from being TensorRT's symmetric int8, one line a node: a missing zero point (uint8 by
    ONNX's default) or one that is not int8 0, a zero point that is computed (not a constant), and int8 weights
    outside [-127, 127] or quantised along an axis other than the output channel (Conv) or a per-tensor scale."""
    import numpy as np
    consts = _constants(model)
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq:
        return ["no QuantizeLinear/DequantizeLinear nodes: not an explicitly quantised model"]
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    bad = []
    for n in qdq:
        name = n.name or n.output[0]
        zp_name = n.input[2] if len(n.input) > 2 else ""
        if not zp_name:
            bad.append(f"{name}: no zero point (ONNX's default is uint8)")
            continue
        zp = consts.get(zp_name)
        if zp is None:
            bad.append(f"{name}: zero point {zp_name!r} is computed, not a constant")
            continue
        if zp.dtype != np.int8 or zp.any():
            bad.append(f"{name}: zero point {zp.dtype} {zp.ravel()[:1].tolist()}, not int8 0")
            continue
        weight = consts.get(n.input[0]) if n.op_type == "DequantizeLinear" else None
        if weight is None or weight.dtype != np.int8:
            continue
        if weight.min() < -127:
            bad.append(f"{name}: weight {n.input[0]!r} holds -128 (symmetric int8 is [-127, 127])")
        scale = consts.get(n.input[1])
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        if scale is not None and scale.size > 1:
            users = {c.op_type for c in consumers.get(n.output[0], [])}
            want = 0 if users & {"Conv"} else axis
            if axis != want or weight.shape[axis] != scale.size:
                bad.append(f"{name}: per-channel scales along axis {axis} (size {scale.size}) of weight shape "
                           f"{list(weight.shape)}; a Conv weight is scaled per output channel (axis 0)")
    return bad


def network_onnx(precision: str, onnx_path: Path, out: Path, frames: np.ndarray, tolerance: float,
                 qdq: Path | None = None) -> tuple[Path, dict]:
    """(the ONNX TensorRT parses for ``precision``, what was checked on the way)."""
    if precision == "fp32":
        return onnx_path, {}
    if precision == "fp16":
        half = Path(str(out) + ".fp16.onnx")
        return half, {"fp16_onnx": convert_fp16(onnx_path, half, frames, tolerance)}
    twin = qdq or tensorrt_twin(onnx_path)
    check_qdq_twin(twin, onnx_path)
    return twin, {"qdq_onnx": twin.name, "qdq_sha256": sha256_file(twin)}
