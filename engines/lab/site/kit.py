"""The commissioning kit a model ships beside it (``<model>.sitekit.npz``): what a hospital's machine, which has no
research data, needs to commission the model at its tower.

- ``pos``: stride-16 feature maps (the frozen part's output) of the model's own training polyp frames, int8 with a
  scale per frame: the polyp evidence that keeps sensitivity while the site's frames teach the model its tower.
- ``neg``: the same for training polyp-free frames of every source (the model must stay quiet elsewhere too).
- ``check``: held back from ``pos``, never trained on at the site: the sensitivity figure of the commissioning report.
- ``reference``: the model's validation scores per source (histograms), beside which the site check draws the site.
Built in the lab by ``polypwatch site-kit`` from the model's own training split.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines.errors import ModelError

KIT_VERSION = 1
BINS = np.linspace(0.0, 1.0, 51)


def kit_path(model: str | Path) -> Path:
    p = Path(model)
    return p.with_name(p.name.removesuffix(".onnx") + ".sitekit.npz")


def quantise(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 feature maps and one scale per frame (symmetric, the frame's largest magnitude at 127)."""
    scale = np.maximum(np.abs(f).reshape(len(f), -1).max(1), 1e-8) / 127.0
    return np.clip(np.round(f / scale[:, None, None, None]), -127, 127).astype(np.int8), scale.astype(np.float32)


def dequantise(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * scale[:, None, None, None]


@dataclass(frozen=True, eq=False)
class SiteKit:
    model_id: str
    pos: np.ndarray = field(repr=False)            # float32 N x C x h x w (dequantised at load)
    neg: np.ndarray = field(repr=False)
    check: np.ndarray = field(repr=False)
    reference: dict = field(default_factory=dict)  # {"bins": [...], "sources": {name: {"negatives": counts, ...}}}

    def describe(self) -> dict:
        return {"model_id": self.model_id, "positives": len(self.pos), "negatives": len(self.neg),
                "check_positives": len(self.check), "reference_sources": sorted(self.reference.get("sources", {}))}


def save_kit(kit: SiteKit, path: Path) -> None:
    arrays = {}
    for name in ("pos", "neg", "check"):
        q, s = quantise(getattr(kit, name))
        arrays[name], arrays[name + "_scale"] = q, s
    header = {"version": KIT_VERSION, "model_id": kit.model_id, "reference": kit.reference}
    buf = io.BytesIO()
    np.savez_compressed(buf, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def load_kit(path: Path, model_id: str) -> SiteKit:
    """The kit at ``path``; a missing, unreadable or other model's kit is a ModelError that says what to do."""
    if not path.is_file():
        raise ModelError(f"{path}: no commissioning kit for this model (polypwatch site-kit builds one in the lab "
                         f"from the model's training data)")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode())
            arrays = {n: dequantise(z[n], z[n + "_scale"]) for n in ("pos", "neg", "check")}
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{path}: not a readable commissioning kit ({e})") from None
    if header.get("version") != KIT_VERSION:
        raise ModelError(f"{path}: kit version {header.get('version')}, expected {KIT_VERSION}")
    if header.get("model_id") != model_id:
        raise ModelError(f"{path}: a kit for {header.get('model_id')!r}, not for {model_id!r}")
    return SiteKit(model_id, arrays["pos"], arrays["neg"], arrays["check"], header.get("reference", {}))


def histogram(scores: np.ndarray) -> list[int]:
    return np.histogram(np.clip(scores, 0, 1), BINS)[0].astype(int).tolist()


def reference_from(scores_by_source: dict[str, dict[str, np.ndarray]], threshold: float) -> dict:
    """The validation scores per source and class as histograms (what the site check draws the site beside)."""
    out = {"bins": BINS.round(3).tolist(), "threshold": threshold, "sources": {}}
    for src, by in scores_by_source.items():
        out["sources"][src] = {k: {"counts": histogram(v), "n": int(len(v)),
                                   "over_threshold": round(float((v >= threshold).mean()), 4) if len(v) else None}
                               for k, v in by.items()}
    return out
