"""Commissioning a model at one tower: its last stage (the stride-32 blocks) and head fine-tuned with the site's
polyp-free frames as negatives, beside the polyp evidence of its commissioning kit, so that what the tower shows
(stool, bubbles, its light) is ranked below polyps instead of merely thresholded away.

The frozen part (stem and stride-16 blocks) runs once per frame; training runs on those cached feature maps, so a
site takes minutes on two CPU cores. Each batch: half kit positives, a quarter kit negatives, a quarter site frames.
Loss: the frame score's cross-entropy, plus the heat map's: towards 0 on negatives, towards the stock model's own map
on positives (so the boxes stay where they were). Batch-norm statistics stay as trained.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from engines.errors import ModelError
from engines.lab.site.kit import SiteKit


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 200
    batch: int = 32
    lr: float = 2e-4
    weight_decay: float = 1e-4
    heat_weight: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 4:
            raise ValueError(f"steps, batch: expected >= 1 and >= 4, got {self.steps}, {self.batch}")
        if not 0 < self.lr < 0.1:
            raise ValueError(f"lr: expected a value in (0, 0.1), got {self.lr}")


def check_network(net) -> None:
    if getattr(net, "head", "") != "pooled" or net.num_classes != 1:
        raise ModelError("commissioning handles polyp-score models with the pooled head (v1-v3) only")


def trunk(net, inputs: np.ndarray, batch: int = 32) -> np.ndarray:
    """The frozen part's output (stride-16 feature maps) of model inputs (N x 3 x H x W)."""
    import torch
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            x = net.stem(torch.from_numpy(inputs[i:i + batch]))
            for b in net.blocks16:
                x = b(x)
            out.append(x.numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def head(net, f16):
    """(score logit N, heat-map logits N x 1 x h x w) from stride-16 feature maps: the part commissioning trains."""
    import torch
    import torch.nn.functional as F
    x = f16
    for b in net.blocks32:
        x = b(x)
    up = F.interpolate(net.lateral(x), size=f16.shape[-2:], mode="nearest")
    heat = net.heat(net.fuse(torch.cat([f16, up], 1)))
    pooled = torch.cat([x.mean((2, 3)), heat.amax((2, 3))], 1)
    return net.cls(pooled).squeeze(1), heat


def scores(net, f16: np.ndarray, batch: int = 128) -> np.ndarray:
    import torch
    net.eval()
    with torch.no_grad():
        return np.concatenate([torch.sigmoid(head(net, torch.from_numpy(f16[i:i + batch]))[0]).numpy()
                               for i in range(0, len(f16), batch)] or [np.zeros(0, np.float32)])


def finetune(base, site_f16: np.ndarray, kit: SiteKit, cfg: FinetuneConfig, site_pos=None):
    """A copy of ``base`` with its last stage and head fine-tuned; ``base`` is not changed. ``site_pos``: the site's
    own reviewed polyps (engines/lab/site/positives.py), half of each batch's positives where there are any, their heat
    map held to the reviewer's place."""
    import torch
    import torch.nn.functional as F
    check_network(base)
    if len(site_f16) == 0:
        raise ValueError("no site frame to commission with")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = copy.deepcopy(base)
    net.eval()                                      # batch-norm statistics and dropout as deployed
    trainable = [*net.blocks32.parameters(), *net.lateral.parameters(), *net.fuse.parameters(),
                 *net.heat.parameters(), *net.cls.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    with torch.no_grad():                           # the stock model's maps on the evidence: the boxes to keep
        pos_heat = torch.cat([torch.sigmoid(head(base, torch.from_numpy(kit.pos[i:i + 128]))[1])
                              for i in range(0, len(kit.pos), 128)])
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_pos, n_kneg = cfg.batch // 2, cfg.batch // 4
    n_site = cfg.batch - n_pos - n_kneg
    n_spos = n_pos // 2 if site_pos is not None and len(site_pos) else 0
    spos_f = site_pos.f16 if n_spos else np.zeros((0,) + kit.pos.shape[1:], kit.pos.dtype)
    spos_heat = torch.from_numpy(site_pos.heat) if n_spos else None
    for _ in range(cfg.steps):
        ip = rng.integers(0, len(kit.pos), n_pos - n_spos)
        isp = rng.integers(0, max(1, len(spos_f)), n_spos)
        ik = rng.integers(0, len(kit.neg), n_kneg)
        isite = rng.integers(0, len(site_f16), n_site)
        x = torch.from_numpy(np.concatenate([kit.pos[ip], spos_f[isp], kit.neg[ik], site_f16[isite]]))
        y = torch.cat([torch.ones(n_pos), torch.zeros(n_kneg + n_site)])
        logit, heat = head(net, x)
        loss = F.binary_cross_entropy_with_logits(logit, y)
        targets = [pos_heat[torch.from_numpy(ip)]] + ([spos_heat[torch.from_numpy(isp)]] if n_spos else [])
        heat_target = torch.cat([*targets, torch.zeros_like(heat[n_pos:])])
        loss = loss + cfg.heat_weight * F.binary_cross_entropy_with_logits(heat, heat_target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p in net.parameters():
        p.requires_grad_(False)
    net.eval()
    return net
