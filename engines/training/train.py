"""Training PolypNet: fixed seeds, augmentation, AdamW + one-cycle schedule, best checkpoint on validation AUROC.

Resumable: ``last.pt`` is written after every epoch with the weights, the optimiser, the schedule, the sampler's
random state and the history; ``train(..., resume=True)`` continues from it with the same result as an
uninterrupted run. With ``samples_per_epoch`` an epoch draws that many frames, each (source, label) cell weighted
by 1/sqrt(its size), so that small sources are not drowned by large ones.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engines.evaluation.metrics import auroc
from engines.runtime.preprocess import PreprocessSpec, normalise
from engines.training.augment import augment
from engines.training.colour_match import match_batch
from engines.training.training_data import ArraySet

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
    augment: str = "standard"       # standard | strong (engines/training/augment.py)
    mil_weight: float = 0.0         # weight of the heatmap's max-cell loss on positives without a mask (weak labels)
    debris: float = 0.0             # probability of drawn stool/residue per training frame (engines/training/debris.py)
    mixstyle: float = 0.0           # probability per batch of mixing feature styles between frames (mixstyle.py)
    colour_match: float = 0.0       # probability per frame of taking another frame's colours (colour_match.py)
    message_box: float = 0.0        # probability per frame of an on-screen message box over the image (data/osd.py)
    average_from: int = 0           # > 0: the result is the mean of the weights over every step from this epoch on
    samples_per_epoch: int = 0      # 0: every training frame once per epoch, in random order
    num_classes: int = 1            # 1: polyp probability (+ heatmap); C > 1: classification-only, C classes
    spec: PreprocessSpec = field(default_factory=PreprocessSpec)

    def __post_init__(self) -> None:
        if self.mil_weight < 0:
            raise ValueError(f"TrainConfig.mil_weight: expected a weight >= 0, got {self.mil_weight}")
        if not 0.0 <= self.debris <= 1.0:
            raise ValueError(f"TrainConfig.debris: expected a probability in [0, 1], got {self.debris}")
        if not 0.0 <= self.mixstyle <= 1.0:
            raise ValueError(f"TrainConfig.mixstyle: expected a probability in [0, 1], got {self.mixstyle}")
        if not 0.0 <= self.colour_match <= 1.0:
            raise ValueError(f"TrainConfig.colour_match: expected a probability in [0, 1], got {self.colour_match}")
        if not 0.0 <= self.message_box <= 1.0:
            raise ValueError(f"TrainConfig.message_box: expected a probability in [0, 1], got {self.message_box}")
        if not 0 <= self.average_from <= self.epochs:
            raise ValueError(f"TrainConfig.average_from: expected an epoch in [0, epochs={self.epochs}] (0: off), "
                             f"got {self.average_from}")
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


def weak_positive_loss(heat_logit, labels, has_mask):
    """Multiple-instance loss for positive frames without a mask (PolypGen's): such a frame still says "some cell
    holds a polyp", so its hottest heatmap cell is pushed towards 1. Frames with a mask (negatives included: theirs is
    empty) are left to the per-cell loss. 0 when the batch holds no such frame."""
    import torch
    from torch.nn import functional as F
    weak = (1 - has_mask) * (labels > 0).float()
    if float(weak.sum()) == 0:
        return heat_logit.sum() * 0
    top = heat_logit.amax(dim=tuple(range(1, heat_logit.dim())))
    lm = F.binary_cross_entropy_with_logits(top, torch.ones_like(top), reduction="none")
    return (lm * weak).sum() / weak.sum()


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
    net = PolypNet(pretrained=cfg.pretrained, num_classes=cfg.num_classes,
                   backbone=cfg.backbone).to(memory_format=torch.channels_last)
    n_frozen = stride8_blocks(net.blocks16) if cfg.freeze_blocks < 0 else cfg.freeze_blocks
    frozen = [net.stem, *net.blocks16[:n_frozen]]
    for mod in frozen:
        for p in mod.parameters():
            p.requires_grad = False
    hooks = []
    if cfg.mixstyle > 0:    # after the frozen stride-8 blocks and half-way through the stride-16 stage
        from engines.training.mixstyle import add_mixstyle
        hooks = add_mixstyle(net, [net.blocks16[max(n_frozen, 1) - 1],
                                   net.blocks16[(n_frozen + len(net.blocks16)) // 2]], cfg.mixstyle)
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
    hh, hw = spec.input_height // 16, spec.input_width // 16
    best, history, start = -1.0, [], 1
    average = WeightAverage(net) if cfg.average_from else None
    if not resume and (out_dir / "last.pt").is_file():
        raise ValueError(f"{out_dir} holds a training run already (last.pt): --resume continues it, or choose "
                         f"another --out")
    if resume and (out_dir / "last.pt").is_file():
        state = torch.load(out_dir / "last.pt", map_location="cpu", weights_only=False)
        # runs from before these options
        saved = {"debris": 0.0, "mil_weight": 0.0, "mixstyle": 0.0, "colour_match": 0.0, "average_from": 0,
                 "message_box": 0.0,
                 **state["config"]}
        if saved != asdict(cfg) | {"spec": spec.to_dict()}:
            raise ValueError(f"--resume: {out_dir / 'last.pt'} was written with another configuration; "
                             f"use a new --out or the same options")
        net.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["sampler"]
        torch.set_rng_state(state["torch_rng"])
        best, history, start = state["best"], state["history"], state["epoch"] + 1
        if average is not None and state.get("average"):
            average.load_state_dict(state["average"])
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
            imgs, msks = zip(*(augment(train_set.images[i], train_set.masks[i], rng, spec, cfg.augment, cfg.debris,
                                       cfg.message_box) for i in idx))
            if cfg.colour_match > 0:
                imgs = match_batch(list(imgs), rng, cfg.colour_match)
            x = torch.from_numpy(batch_tensor(np.stack(imgs), spec)).to(memory_format=torch.channels_last)
            y = torch.from_numpy(train_set.labels[idx] if multi else train_set.labels[idx].astype(np.float32))
            ht = torch.from_numpy(heat_targets(np.stack(msks), (hh, hw)))
            hm = torch.from_numpy(train_set.has_mask[idx].astype(np.float32))
            s, h = net(x)
            loss_cls = (F.cross_entropy(s, y) if multi
                        else F.binary_cross_entropy_with_logits(s, y, pos_weight=pos_weight))
            lh = F.binary_cross_entropy_with_logits(h, ht, reduction="none").mean((1, 2, 3))
            loss_heat = (lh * hm).sum() / hm.sum().clamp(min=1)
            loss = loss_cls + cfg.heatmap_weight * loss_heat
            if cfg.mil_weight > 0 and not multi:
                loss = loss + cfg.mil_weight * weak_positive_loss(h, y, hm)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if average is not None and epoch >= cfg.average_from:
                average.update(net)
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
                    "best": best, "history": history, "config": asdict(cfg) | {"spec": spec.to_dict()},
                    "average": average.state_dict() if average is not None else None}, tmp)
        tmp.replace(out_dir / "last.pt")
    for h in hooks:         # the trained network leaves without its training-only hooks
        h.remove()
    if average is not None:
        return _averaged(net, average, frozen, train_set, val_set, cfg, out_dir, history)
    state = torch.load(out_dir / "best.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state["state_dict"])
    net.eval()
    return net, history


class WeightAverage:
    """The running mean of a network's trainable weights, one update per optimiser step (stochastic weight
    averaging over the late, low-rate part of the schedule: Izmailov et al. 2018; dense, as in SWAD, Cha et al.
    NeurIPS 2021). Batch-norm statistics are not averaged: they are measured again for the averaged weights."""

    def __init__(self, net) -> None:
        self.names = [n for n, p in net.named_parameters() if p.requires_grad]
        self.mean: dict = {}
        self.count = 0

    def update(self, net) -> None:
        params = dict(net.named_parameters())
        self.count += 1
        for n in self.names:
            p = params[n].detach()
            if n not in self.mean:
                self.mean[n] = p.clone()
            else:
                self.mean[n] += (p - self.mean[n]) / self.count

    def state_dict(self) -> dict:
        return {"mean": self.mean, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.count = state["mean"], state["count"]

    def apply(self, net) -> None:
        import torch
        if not self.count:
            raise ValueError("weight averaging: no step was averaged (average_from after the last epoch?)")
        params = dict(net.named_parameters())
        with torch.no_grad():
            for n in self.names:
                params[n].copy_(self.mean[n])


BN_BATCHES = 60         # training batches that measure the batch-norm statistics of the averaged weights


def update_batchnorm(net, frozen, train_set: ArraySet, cfg: TrainConfig, batches: int = BN_BATCHES) -> None:
    """Batch-norm running statistics of the trainable layers measured again (cumulative mean over ``batches``
    augmented training batches, drawn as training draws them, from a generator of their own so that the
    sampler's state is untouched); the frozen layers keep theirs."""
    import torch
    from torch import nn
    rng = np.random.default_rng([cfg.seed, 7919])
    frozen_bn = {id(m) for mod in frozen for m in mod.modules()}
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in frozen_bn]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                   # cumulative moving average
    net.train()
    for mod in frozen:
        mod.eval()
    n = min(batches, max(1, len(train_set) // cfg.batch_size))
    with torch.no_grad():
        for _ in range(n):
            idx = (epoch_order(train_set, dataclasses.replace(cfg, samples_per_epoch=cfg.batch_size), rng)
                   if cfg.samples_per_epoch else rng.choice(len(train_set), min(cfg.batch_size, len(train_set)),
                                                            replace=False))
            imgs = [augment(train_set.images[i], train_set.masks[i], rng, cfg.spec, cfg.augment, cfg.debris,
                            cfg.message_box)[0] for i in idx]
            net(torch.from_numpy(batch_tensor(np.stack(imgs), cfg.spec)).to(memory_format=torch.channels_last))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    net.eval()


def _averaged(net, average: WeightAverage, frozen, train_set, val_set, cfg: TrainConfig, out_dir: Path,
              history: list):
    """The averaged network, its batch-norm statistics measured, scored on validation (recorded in the history and
    ``averaged.json``) and saved as ``averaged.pt``; ``best.pt`` stays the best single epoch, for comparison."""
    import torch
    average.apply(net)
    update_batchnorm(net, frozen, train_set, cfg)
    scores, _ = predict(net, val_set, cfg.spec)
    y = val_set.labels
    record = {"epoch": "average", "from_epoch": cfg.average_from, "steps": average.count,
              "val_auroc": auroc(y, scores) or 0.0}
    per_source = per_source_auroc(val_set, scores)
    if len(per_source) > 1:
        record["val_auroc_per_source"] = per_source
        record["val_auroc_mean_of_sources"] = round(float(np.mean(list(per_source.values()))), 5)
    log.info("weight average of %d steps from epoch %d: val AUROC %.4f %s", average.count, cfg.average_from,
             record["val_auroc"], per_source)
    torch.save({"state_dict": net.state_dict(), "epoch": "average",
                "config": asdict(cfg) | {"spec": cfg.spec.to_dict()}}, out_dir / "averaged.pt")
    (out_dir / "averaged.json").write_text(json.dumps(record, indent=1))
    return net, history + [record]


def load_checkpoint(path: str | Path):
    import torch

    from engines.model import PolypNet
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    net = PolypNet(pretrained=False, num_classes=int(state["config"].get("num_classes", 1)),
                   backbone=state["config"].get("backbone", "efficientnet-lite0"))
    net.load_state_dict(state["state_dict"])
    return net.eval(), PreprocessSpec.from_dict(state["config"]["spec"])
