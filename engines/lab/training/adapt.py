"""Site adaptation: a model fitted to one hospital's tower without labels or training.

Every batch-norm layer's statistics are measured again on the hospital's own recordings (AdaBN, Li et al. 2016;
Schneider et al., NeurIPS 2020), so that each layer normalises that tower's video the way it normalised the
training data; the weights stay as trained. The statistics move the scores, so the operating threshold is chosen
again, on the hospital's own polyp-free frames, for the specificity asked for. Leave-one-source-out folds measure
what it does (docs/MODEL_CARD.md, "Site adaptation"); the adapted model must be checked with ``polypwatch replay``
on annotated local recordings before use, as any model must.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.lab.data.recordings import spread_frames
from engines.errors import ModelError
from engines.lab.evaluation.metrics import threshold_for_specificity
from engines.runtime.metadata import read_onnx_metadata
from engines.runtime.preprocess import PreprocessSpec, preprocess

log = logging.getLogger(__name__)
MAX_FLAGGED_SHARE = 0.5    # over this share of recording frames over the threshold: a warning (polyp collections?)
SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@dataclass(frozen=True)
class AdaptConfig:
    site: str                          # short name, appended to the model id: lower-case letters, digits, '-'
    frames_per_recording: int = 300    # frames spread over each recording (video or image folder)
    specificity: float = 0.95          # on the site's polyp-free frames, at the new threshold
    min_adaptation_frames: int = 200   # fewer give noisy statistics
    min_polyp_free_frames: int = 200   # fewer give a threshold that means little (1 in 20 of them sets it)
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if not SITE_NAME.fullmatch(self.site):
            raise ValueError(f"site: expected 1-40 of a-z, 0-9 and '-' (starting with a letter or digit), "
                             f"got {self.site!r}")
        if not 0.5 <= self.specificity < 1.0:
            raise ValueError(f"specificity: expected a value in [0.5, 1), got {self.specificity}")
        for name in ("frames_per_recording", "min_adaptation_frames", "min_polyp_free_frames", "batch_size"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name}: expected an integer >= 2, got {getattr(self, name)}")


@dataclass(frozen=True)
class AdaptResult:
    model_id: str
    path: Path
    threshold: float                   # chosen on the site's polyp-free frames
    threshold_before: float            # the model's own
    adaptation_frames: int
    flagged_share_before: float        # share of the recordings' frames the model as it was scores over its threshold
    polyp_free_frames: int
    specificity_before: float          # the model as it was, at its own threshold, on the site's polyp-free frames
    specificity_adapted_old_threshold: float   # adapted, at the old threshold: why the threshold is chosen again
    held_out_specificity: tuple[float, ...]    # per polyp-free recording, at a threshold chosen on the others
    parity: float                      # max abs difference torch vs ONNX Runtime of the written file

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def load_model(model: str | Path):
    """(PolypNet in eval mode, its ONNX metadata) from an ONNX file and the checkpoint beside it (``.pt``)."""
    from engines.backends.torch_backend import checkpoint_for
    from engines.model import load_weights
    model = Path(model)
    meta = read_onnx_metadata(model)
    ckpt = checkpoint_for(model)
    if not ckpt.is_file():
        raise ModelError(f"site adaptation needs the weights beside the ONNX file: {ckpt} not found")
    net = load_weights(ckpt, meta.model_id, strict=True)
    if net.num_classes != 1:
        raise ModelError(f"model {meta.model_id}: site adaptation handles polyp-score models only (1 output)")
    return net, meta


def recording_inputs(recordings, spec: PreprocessSpec, per_recording: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N x 3 x H x W model inputs, N recording indices): frames spread over each recording, through the deployed
    preprocessing."""
    out, which = [], []
    for k, rec in enumerate(recordings):
        for img in spread_frames(rec, per_recording, seed, what="recording"):
            out.append(preprocess(img, spec).tensor[0])
            which.append(k)
    if not out:
        return np.zeros((0, 3, spec.input_height, spec.input_width), np.float32), np.zeros(0, int)
    return np.stack(out), np.array(which)


def held_out_specificity(scores: np.ndarray, recording: np.ndarray, specificity: float) -> list[float]:
    """For each recording: the specificity on its frames at the threshold chosen on the other recordings' frames
    (how well a threshold chosen on some procedures holds on the next one); empty with fewer than 2 recordings."""
    ids = np.unique(recording)
    if len(ids) < 2:
        return []
    return [round(float((scores[recording == r] < threshold_for_specificity(scores[recording != r], specificity))
                        .mean()), 4) for r in ids]


def adapt_batchnorm(net, inputs: np.ndarray, batch_size: int, seed: int) -> None:
    """Every batch-norm layer's running mean and variance measured again over ``inputs`` (the cumulative mean of
    the statistics of shuffled batches of ``batch_size``; a last, smaller batch is left out); weights unchanged."""
    import torch
    from torch import nn
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    net.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None               # cumulative moving average
        m.train()
    order = np.random.default_rng(seed).permutation(len(inputs))
    with torch.no_grad():
        for i in range(0, len(order) - batch_size + 1, batch_size):
            net(torch.from_numpy(inputs[np.sort(order[i:i + batch_size])]))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    net.eval()


def frame_scores(net, inputs: np.ndarray, batch: int = 64) -> np.ndarray:
    """Polyp probability of each input (the temperature is folded into the network)."""
    import torch
    net.eval()
    with torch.no_grad():
        return np.concatenate([torch.sigmoid(net(torch.from_numpy(inputs[i:i + batch]))[0]).numpy()
                               for i in range(0, len(inputs), batch)] or [np.zeros(0, np.float32)])


def site_inputs(recordings, polyp_free, spec: PreprocessSpec, cfg: AdaptConfig):
    """(adaptation inputs, polyp-free inputs, the polyp-free frames' recording indices), with enough frames."""
    x, _ = recording_inputs(recordings, spec, cfg.frames_per_recording, cfg.seed)
    if len(x) < cfg.min_adaptation_frames:
        raise ValueError(f"recordings: {len(x)} frames, expected at least {cfg.min_adaptation_frames} "
                         f"(more recordings, or a larger frames_per_recording)")
    neg, neg_rec = recording_inputs(polyp_free, spec, cfg.frames_per_recording, cfg.seed + 1)
    if len(neg) < cfg.min_polyp_free_frames:
        raise ValueError(f"polyp-free recordings: {len(neg)} frames, expected at least {cfg.min_polyp_free_frames}")
    return x, neg, neg_rec


def warn(result: AdaptResult, specificity: float) -> None:
    """Log what makes a site's model doubtful: recordings that look like polyp collections, a threshold that does
    not hold from one polyp-free recording to the next."""
    if result.flagged_share_before > MAX_FLAGGED_SHARE:
        log.warning("%s: %.0f%% of the recordings' frames score over the threshold: recordings should be whole "
                    "procedures, mostly polyp-free; statistics measured on collections of polyp frames rank worse "
                    "(docs/MODEL_CARD.md, Site adaptation)", result.model_id, 100 * result.flagged_share_before)
    held = result.held_out_specificity
    if held and min(held) < specificity - 0.05:
        log.warning("%s: on some polyp-free recordings the threshold chosen on the others keeps only %.2f of frames "
                    "quiet (target %.2f): record more procedures before relying on it", result.model_id, min(held),
                    specificity)


def adapt_model(model: str | Path, recordings, polyp_free, cfg: AdaptConfig, out: str | Path) -> AdaptResult:
    """Write ``out`` (ONNX with metadata) and its checkpoint (``.pt``): ``model`` with batch-norm statistics from
    ``recordings`` (unlabelled video of the site's procedures) and a threshold from ``polyp_free`` (the site's
    recordings with no polyp in view)."""
    from engines.compile.export import export_onnx, write_torch_checkpoint
    model, out = Path(model), Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"out: expected a path ending in .onnx, got {out}")
    if out.resolve() == model.resolve():
        raise ValueError(f"out: {out} is the model being adapted; write the site's model to a new file")
    net, meta = load_model(model)
    x, neg, neg_rec = site_inputs(recordings, polyp_free, meta.preprocess, cfg)
    before = frame_scores(net, neg)
    flagged = float((frame_scores(net, x) >= meta.threshold).mean())
    adapt_batchnorm(net, x, cfg.batch_size, cfg.seed)
    after = frame_scores(net, neg)
    threshold = threshold_for_specificity(after, cfg.specificity)
    if not 0.0 < threshold < 1.0:
        raise ModelError(f"site {cfg.site}: the polyp-free frames score up to {after.max():.4f}; no threshold below "
                         f"1 keeps {cfg.specificity:.0%} of them quiet (are they really polyp-free?)")
    result = AdaptResult(f"{meta.model_id}-{cfg.site}", out, round(threshold, 4), meta.threshold, len(x),
                         round(flagged, 4), len(neg), round(float((before < meta.threshold).mean()), 4),
                         round(float((after < meta.threshold).mean()), 4),
                         tuple(held_out_specificity(after, neg_rec, cfg.specificity)), 0.0)
    warn(result, cfg.specificity)
    report = {k: v for k, v in result.to_dict().items() if k not in ("model_id", "path", "parity")} | {
        "adapted_from": meta.model_id, "site": cfg.site, "method": "batch-norm statistics (every layer)",
        "recordings": [str(r) for r in recordings], "polyp_free": [str(r) for r in polyp_free],
        "specificity_target": cfg.specificity}
    new = dataclasses.replace(meta, model_id=result.model_id, threshold=threshold, scores={},
                              training=meta.training | {"site_adaptation": report})
    parity = export_onnx(net, new, out, samples=x[:4])
    write_torch_checkpoint(net, new, out.with_suffix(".pt"))
    log.info("%s: %d frames adapted, threshold %.4f (was %.4f)", new.model_id, len(x), threshold, meta.threshold)
    return dataclasses.replace(result, parity=parity)
