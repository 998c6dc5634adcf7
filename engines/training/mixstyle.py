"""MixStyle (Zhou et al., ICLR 2021): during training, the per-channel mean and spread of early feature maps
(the "style": colour, contrast, texture statistics of the hospital, scope and processor) are mixed between frames
of a batch, while the normalised features (the content) stay. A model then cannot tie its answer to the style of
the sources it trains on. Training only: it is a forward hook, and the exported network is unchanged."""
from __future__ import annotations

import torch
from torch import nn

ALPHA = 0.1       # Beta(ALPHA, ALPHA) mixing weights, as in the paper: mostly near 0 or 1
EPS = 1e-6


def mix_style(x: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """``x`` (NxCxHxW) with each frame's channel statistics mixed with those of another frame of the batch."""
    n = x.size(0)
    if n < 2:
        return x
    mu = x.mean(dim=(2, 3), keepdim=True).detach()
    sig = (x.var(dim=(2, 3), keepdim=True) + EPS).sqrt().detach()
    lam = torch.distributions.Beta(alpha, alpha).sample((n, 1, 1, 1)).to(x.dtype)
    perm = torch.randperm(n)
    mu_mix = lam * mu + (1 - lam) * mu[perm]
    sig_mix = lam * sig + (1 - lam) * sig[perm]
    return (x - mu) / sig * sig_mix + mu_mix


def add_mixstyle(net: nn.Module, modules: list[nn.Module], p: float) -> list:
    """Hooks that apply ``mix_style`` to each module's output with probability ``p`` per batch while ``net`` is
    in training mode. Returns the hook handles (``.remove()`` takes them off)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"mixstyle: expected a probability in [0, 1], got {p}")

    def hook(_module, _inputs, output):
        if net.training and torch.rand(()) < p:
            return mix_style(output)
        return output
    return [m.register_forward_hook(hook) for m in modules]
