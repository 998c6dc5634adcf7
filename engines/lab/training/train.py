"""Training PolypNet: fixed seeds, augmentation, AdamW + one-cycle schedule, best checkpoint on validation AUROC.

Resumable: ``last.pt`` is written after every epoch with the weights, the optimiser, the schedule, the sampler's
random state and the history; ``train(..., resume=True)`` continues from it with the same result as an
uninterrupted run. With ``samples_per_epoch`` an epoch draws that many frames, each (source, label) cell weighted
by 1/sqrt(its size), so that small sources are not drowned by large ones.

Longer than 250 lines: the configuration, the sampler and the epoch loop with its checkpoint and resume are one
sequence whose parts must change together (a resumed run equals an uninterrupted one only if they agree).
"""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engines.errors import ConfigError
from engines.lab.evaluation.metrics import auroc
from engines.runtime.preprocess import PreprocessSpec, normalise
from engines.lab.training.augment import augment
from engines.lab.data.arrays import ArraySet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    heatmap_weight: float = 1.0
    freeze_blocks: int = -1         # EfficientNet blocks kept at their ImageNet weights (-1: those at stride <= 8)
    backbone: str = "efficientnet-lite0"
    seed: int = 0
    pretrained: bool = True
    threads: int = 0                # torch threads; 0 = torch's default
    augment: str = "standard"       # standard | strong (engines/lab/training/augment.py)
    message_box: float = 0.0        # probability per frame of an on-screen message box over the image (data/osd.py)
    head: str = "pooled"            # pooled (v1-v3) | dense8: the score is the stride-8 map's maximum (engines/model.py)
    aux_weight: float = 0.0         # dense8: weight of the auxiliary pooled classifier's loss
    samples_per_epoch: int = 0      # 0: every training frame once per epoch, in random order
    num_classes: int = 1            # 1: polyp probability (+ heatmap); C > 1: classification-only, C classes
    spec: PreprocessSpec = field(default_factory=PreprocessSpec)

    def __post_init__(self) -> None:
        if not 0.0 <= self.message_box <= 1.0:
            raise ValueError(f"TrainConfig.message_box: expected a probability in [0, 1], got {self.message_box}")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0 or self.samples_per_epoch < 0:
            raise ValueError(f"TrainConfig: expected epochs >= 1, batch_size >= 2, lr > 0, samples_per_epoch >= 0; "
                             f"got {self.epochs}, {self.batch_size}, {self.lr}, {self.samples_per_epoch}")


def _progress(prefix: str, i: int, n: int, extra: str = "") -> None:
    width = 30
    done = int(width * i / max(n, 1))
    end = "\n" if i >= n else ""
    print(f"\r{prefix} [{'#' * done}{'.' * (width - done)}] {i}/{n} {extra}", end=end, file=sys.stderr, flush=True)


def heat_targets(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """N x H x W masks -> N x 1 x h x w soft targets (fraction of each cell covered, doubled, capped at 1)."""
    import cv2
    h, w = size
    out = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA) for m in masks])
    return np.clip(out * 2.0, 0, 1)[:, None].astype(np.float32)


def batch_tensor(images: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    return np.concatenate([normalise(im, spec) for im in images])


def predict(net, data: ArraySet, spec: PreprocessSpec, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(scores N — or class probabilities N x C, heatmaps N x h x w) as probabilities, no augmentation."""
    import torch
    net.eval()
    scores, heats = [], []
    with torch.no_grad():
        for i in range(0, len(data), batch):
            x = torch.from_numpy(batch_tensor(data.images[i:i + batch], spec)).to(memory_format=torch.channels_last)
            s, h = net(x)
            scores.append((torch.sigmoid(s) if s.ndim == 1 else torch.softmax(s, dim=1)).numpy())
            heats.append(torch.sigmoid(h)[:, 0].numpy())
    return np.concatenate(scores), np.concatenate(heats)


def sample_weights(data: ArraySet) -> np.ndarray:
    """Per-frame draw probability: each (source, label) cell weighted by 1/sqrt(its size)."""
    cells = [f"{s}|{lab}" for s, lab in zip(data.sources, data.labels.tolist())]
    counts: dict[str, int] = {}
    for c in cells:
        counts[c] = counts.get(c, 0) + 1
    w = np.array([1.0 / np.sqrt(counts[c]) for c in cells])      # a cell's total weight ~ sqrt(its size)
    return w / w.sum()


def epoch_order(data: ArraySet, cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    if cfg.samples_per_epoch == 0:
        return rng.permutation(len(data))
    return rng.choice(len(data), cfg.samples_per_epoch, replace=True, p=sample_weights(data))


def per_source_auroc(data: ArraySet, scores: np.ndarray) -> dict[str, float]:
    out = {}
    for src in sorted(set(data.sources)):
        sel = np.array([s == src for s in data.sources])
        a = auroc(data.labels[sel], scores[sel])
        if a is not None:
            out[src or "all"] = round(a, 5)
    return out


class Paused(Exception):
    """Training stopped after the epochs asked for in this invocation; ``--resume`` continues it."""


def train(train_set: ArraySet, val_set: ArraySet, cfg: TrainConfig, out_dir: Path, resume: bool = False,
          epochs_now: int = 0):
    """Returns (best network, history). Writes ``out_dir/best.pt`` whenever validation improves and
    ``out_dir/last.pt`` (everything needed to continue) after every epoch. ``epochs_now`` > 0: stop after that
    many epochs of this invocation (raises ``Paused`` unless the run is complete)."""
    import torch
    from torch.nn import functional as F

    from engines.model import PolypNet
    torch.manual_seed(cfg.seed)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    from engines.model import stride8_blocks
    net = PolypNet(pretrained=cfg.pretrained, num_classes=cfg.num_classes, backbone=cfg.backbone,
                   head=cfg.head).to(memory_format=torch.channels_last)
    n_frozen = stride8_blocks(net.blocks16) if cfg.freeze_blocks < 0 else cfg.freeze_blocks
    frozen = [net.stem, *net.blocks16[:n_frozen]]
    for mod in frozen:
        for p in mod.parameters():
            p.requires_grad = False
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil((cfg.samples_per_epoch or len(train_set)) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    if total >= 20:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.1)
    else:               # too few steps for a one-cycle schedule (its phases would be empty): constant rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    multi = cfg.num_classes > 1
    pos_frac = float((train_set.labels > 0).mean())
    pos_weight = torch.tensor((1 - pos_frac) / max(pos_frac, 1e-3))
    spec = cfg.spec
    hh, hw = spec.input_height // net.heat_stride, spec.input_width // net.heat_stride
    best, history, start = -1.0, [], 1
    if not resume and (out_dir / "last.pt").is_file():
        raise ConfigError(f"{out_dir} holds a training run already (last.pt): --resume continues it, or choose "
                         f"another --out")
    if resume and (out_dir / "last.pt").is_file():
        state = torch.load(out_dir / "last.pt", map_location="cpu", weights_only=False)
        saved = _current_keys(state["config"])
        if saved != asdict(cfg) | {"spec": spec.to_dict()}:
            raise ConfigError(f"--resume: {out_dir / 'last.pt'} was written with another configuration; "
                             f"use a new --out or the same options")
        net.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["sampler"]
        torch.set_rng_state(state["torch_rng"])
        best, history, start = state["best"], state["history"], state["epoch"] + 1
        log.info("resuming after epoch %d of %d", state["epoch"], cfg.epochs)
    for epoch in range(start, cfg.epochs + 1):
        if epochs_now and epoch - start >= epochs_now:
            raise Paused(f"stopped after epoch {epoch - 1} of {cfg.epochs}; continue with --resume")
        net.train()
        for mod in frozen:
            mod.eval()
        order = epoch_order(train_set, cfg, rng)
        t0, losses = time.monotonic(), []
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            imgs, msks = zip(*(augment(train_set.images[i], train_set.masks[i], rng, spec, cfg.augment,
                                       cfg.message_box) for i in idx))
            x = torch.from_numpy(batch_tensor(np.stack(imgs), spec)).to(memory_format=torch.channels_last)
            y = torch.from_numpy(train_set.labels[idx] if multi else train_set.labels[idx].astype(np.float32))
            ht = torch.from_numpy(heat_targets(np.stack(msks), (hh, hw)))
            hm = torch.from_numpy(train_set.has_mask[idx].astype(np.float32))
            s, h, aux = net.forward_train(x)
            loss_cls = (F.cross_entropy(s, y) if multi
                        else F.binary_cross_entropy_with_logits(s, y, pos_weight=pos_weight))
            lh = F.binary_cross_entropy_with_logits(h, ht, reduction="none").mean((1, 2, 3))
            loss_heat = (lh * hm).sum() / hm.sum().clamp(min=1)
            loss = loss_cls + cfg.heatmap_weight * loss_heat
            if aux is not None and cfg.aux_weight > 0:     # dense8: the pooled classifier, a training term only
                loss = loss + cfg.aux_weight * F.binary_cross_entropy_with_logits(aux, y, pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss))
            _progress(f"epoch {epoch}/{cfg.epochs}", step + 1, steps_per_epoch, f"loss {np.mean(losses[-20:]):.3f}")
        scores, _ = predict(net, val_set, spec)
        eps = 1e-6
        y = val_set.labels
        if multi:       # model selection on accuracy; the loss is the mean negative log-likelihood
            val_auc = float((scores.argmax(1) == y).mean())
            val_loss = float(-np.mean(np.log(scores[np.arange(len(y)), y] + eps)))
        else:
            val_auc = auroc(y, scores) or 0.0
            val_loss = float(-np.mean(y * np.log(scores + eps) + (1 - y) * np.log(1 - scores + eps)))
        name = "val_accuracy" if multi else "val_auroc"
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), name: val_auc,
                        "val_loss": val_loss, "seconds": round(time.monotonic() - t0, 1)})
        per_source = {} if multi else per_source_auroc(val_set, scores)
        if len(per_source) > 1:         # several sources: select on the mean of their AUROCs, not the pooled one
            history[-1]["val_auroc_per_source"] = per_source
            val_auc = float(np.mean(list(per_source.values())))
            history[-1]["val_auroc_mean_of_sources"] = round(val_auc, 5)
        log.info("epoch %d: train loss %.4f, %s %.4f, val loss %.4f (%.0f s)", epoch, np.mean(losses), name,
                 val_auc, val_loss, time.monotonic() - t0)
        key = val_auc - 0.01 * val_loss
        if key > best:
            best = key
            torch.save({"state_dict": net.state_dict(), "epoch": epoch, "config": asdict(cfg) | {"spec": spec.to_dict()}},
                       out_dir / "best.pt")
        (out_dir / "history.json").write_text(json.dumps(history, indent=1))
        tmp = out_dir / "last.pt.tmp"
        torch.save({"state_dict": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "sampler": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "epoch": epoch,
                    "best": best, "history": history, "config": asdict(cfg) | {"spec": spec.to_dict()}}, tmp)
        tmp.replace(out_dir / "last.pt")
    state = torch.load(out_dir / "best.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state["state_dict"])
    net.eval()
    return net, history


# options of runs before session 13 that left the code: a checkpoint with them at these values is this code's run
_REMOVED_OFF = {"debris": 0.0, "mil_weight": 0.0, "mixstyle": 0.0, "colour_match": 0.0, "average_from": 0}


def _current_keys(saved: dict) -> dict:
    """A checkpoint's configuration with the keys of removed options dropped where they were off (a run that used
    one cannot be resumed by this code: its keys stay, so the comparison fails)."""
    return {"message_box": 0.0, "head": "pooled", "aux_weight": 0.0,
            **{k: v for k, v in saved.items() if not (k in _REMOVED_OFF and v == _REMOVED_OFF[k])}}


def load_checkpoint(path: str | Path):
    import torch

    from engines.model import PolypNet
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    net = PolypNet(pretrained=False, num_classes=int(state["config"].get("num_classes", 1)),
                   backbone=state["config"].get("backbone", "efficientnet-lite0"),
                   head=state["config"].get("head", "pooled"))
    net.load_state_dict(state["state_dict"])
    return net.eval(), PreprocessSpec.from_dict(state["config"]["spec"])
