"""Weight averaging (tools/train --average-from): the running mean is the mean of the weights it was given, only the
trainable ones; batch-norm statistics are measured again for the trainable layers only, without touching the
sampler's generator."""
import numpy as np
import pytest
import torch

from engines.model import PolypNet, stride8_blocks
from engines.runtime.preprocess import PreprocessSpec
from engines.training.train import TrainConfig, WeightAverage, update_batchnorm
from engines.training.training_data import ArraySet


def _net():
    torch.manual_seed(0)
    net = PolypNet(pretrained=False)
    frozen = [net.stem, *net.blocks16[:stride8_blocks(net.blocks16)]]
    for mod in frozen:
        for p in mod.parameters():
            p.requires_grad = False
    return net, frozen


def test_average_is_the_mean_of_the_trainable_weights_it_saw():
    net, _ = _net()
    avg = WeightAverage(net)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and len(trainable) < len(list(net.parameters()))
    seen = []
    for k in range(3):
        with torch.no_grad():
            for p in net.parameters():
                if p.requires_grad:
                    p.add_(float(k + 1))
        seen.append({n: p.detach().clone() for n, p in net.named_parameters()})
        avg.update(net)
    frozen_before = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad}
    state = avg.state_dict()
    fresh = WeightAverage(net)
    fresh.load_state_dict(state)
    fresh.apply(net)
    params = dict(net.named_parameters())
    for n in trainable:
        expected = torch.stack([s[n] for s in seen]).mean(0)
        assert torch.allclose(params[n], expected, atol=1e-5), n
    for n, p in frozen_before.items():
        assert torch.equal(params[n], p), n
    with pytest.raises(ValueError, match="no step was averaged"):
        WeightAverage(net).apply(net)


def test_batchnorm_measured_again_for_trainable_layers_only():
    net, frozen = _net()
    rng = np.random.default_rng(0)
    n, size = 24, 64
    images = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    data = ArraySet(images, np.zeros((n, size, size), np.float32), np.r_[np.ones(12), np.zeros(12)].astype(np.int64),
                    np.zeros(n, bool), [""] * n, [str(i) for i in range(n)], np.zeros(n, bool), ["a"] * n)
    cfg = TrainConfig(epochs=2, batch_size=8, samples_per_epoch=16, average_from=1,
                      spec=PreprocessSpec(input_height=size, input_width=size))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    in_frozen = {id(m) for mod in frozen for m in mod.modules()}
    before = {id(m): m.running_mean.clone() for m in bns}
    momenta = [m.momentum for m in bns]
    update_batchnorm(net, frozen, data, cfg, batches=2)
    assert not net.training
    for m in bns:
        assert torch.equal(m.running_mean, before[id(m)]) == (id(m) in in_frozen)
    assert [m.momentum for m in bns] == momenta                           # each layer's own momentum is back
    first = {id(m): m.running_mean.clone() for m in bns}
    update_batchnorm(net, frozen, data, cfg, batches=2)                   # its own seeded generator: repeatable
    for m in bns:
        assert torch.allclose(m.running_mean, first[id(m)], atol=1e-6)


def test_average_from_is_checked():
    with pytest.raises(ValueError, match=r"average_from: expected an epoch in \[0, epochs=3\]"):
        TrainConfig(epochs=3, average_from=4)
