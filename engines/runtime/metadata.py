"""Model metadata stored inside the ONNX file: what preprocessing, outputs and threshold the model expects."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engines.errors import ModelError
from engines.runtime.preprocess import PreprocessSpec

METADATA_KEY = "polypwatch"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelMetadata:
    model_id: str
    preprocess: PreprocessSpec
    input_name: str = "image"
    score_output: str = "score"        # (N,) polyp probability of the frame
    heatmap_output: str = "heatmap"    # (N, 1, h, w) per-cell polyp probability
    threshold: float = 0.5             # recommended operating point of the frame score
    box_threshold: float = 0.5         # heatmap level that outlines a box
    classes: tuple[str, ...] = ()      # multi-class models: class names; the score output is then (N, C)
    positive_classes: tuple[int, ...] = ()   # ... and the frame score is the sum of these classes' probabilities
    training: dict = field(default_factory=dict)   # data, split, command
    scores: dict = field(default_factory=dict)     # measured scores (see docs/MODEL_CARD.md)
    decision: str = "pooled"                       # pooled: a classifier's score; map_max: the heat map's maximum
    precision: str = "fp32"                        # fp32 | int8 (an INT8 twin made by tools/quantize)
    quantization: dict = field(default_factory=dict)   # int8: the fp32 file, calibration set, method, excluded nodes

    def __post_init__(self) -> None:
        if self.decision not in ("pooled", "map_max"):
            raise ModelError(f"model metadata decision: expected 'pooled' or 'map_max', got {self.decision!r}")
        if self.precision not in ("fp32", "int8"):
            raise ModelError(f"model metadata precision: expected 'fp32' or 'int8', got {self.precision!r}")
        for name in ("threshold", "box_threshold"):
            v = getattr(self, name)
            if not (0.0 < v < 1.0):
                raise ModelError(f"model metadata {name}: expected 0 < value < 1, got {v!r}")

    def to_json(self) -> str:
        return json.dumps({
            "schema": SCHEMA_VERSION, "model_id": self.model_id, "preprocess": self.preprocess.to_dict(),
            "input_name": self.input_name, "score_output": self.score_output,
            "heatmap_output": self.heatmap_output, "threshold": self.threshold,
            "box_threshold": self.box_threshold, "training": self.training, "scores": self.scores,
            "classes": list(self.classes), "positive_classes": list(self.positive_classes),
            **({"precision": self.precision, "quantization": self.quantization} if self.precision != "fp32" else {}),
            **({"decision": self.decision} if self.decision != "pooled" else {}),
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "model") -> "ModelMetadata":
        try:
            d = json.loads(text)
            if d.get("schema") != SCHEMA_VERSION:
                raise ModelError(f"{where}: metadata schema {d.get('schema')!r}, expected {SCHEMA_VERSION}")
            return cls(model_id=str(d["model_id"]), preprocess=PreprocessSpec.from_dict(d["preprocess"]),
                       input_name=d["input_name"], score_output=d["score_output"],
                       heatmap_output=d["heatmap_output"], threshold=float(d["threshold"]),
                       box_threshold=float(d["box_threshold"]), training=d.get("training", {}),
                       classes=tuple(d.get("classes", ())), positive_classes=tuple(d.get("positive_classes", ())),
                       scores=d.get("scores", {}), precision=d.get("precision", "fp32"),
                       decision=d.get("decision", "pooled"),
                       quantization=d.get("quantization", {}))
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
            raise ModelError(f"{where}: malformed polypwatch metadata ({e})") from None


def read_onnx_metadata(path: str | Path) -> ModelMetadata:
    """Metadata of an ONNX model file (reads the graph's metadata_props; weights are not needed)."""
    import onnx
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model {path}: file not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and others for corrupt files
        raise ModelError(f"model {path}: not a readable ONNX file ({e})") from None
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ModelError(f"model {path}: no {METADATA_KEY!r} metadata; export it with engines.compile.export "
                         f"or add the metadata (see docs/MODEL_CARD.md)")
    return ModelMetadata.from_json(props[METADATA_KEY], where=f"model {path}")


def write_onnx_metadata(path: str | Path, meta: ModelMetadata) -> None:
    import onnx
    model = onnx.load(str(path))
    for p in list(model.metadata_props):
        if p.key == METADATA_KEY:
            model.metadata_props.remove(p)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.to_json()
    onnx.save(model, str(path))
