"""MixStyle: feature statistics mixed between frames in training, nothing changed in evaluation or export."""
import pytest
import torch

from engines.model import PolypNet
from engines.training.mixstyle import add_mixstyle, mix_style


def test_mixing_keeps_the_content_and_moves_the_statistics():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 8, 8) * torch.arange(1, 7).view(6, 1, 1, 1) + torch.arange(6).view(6, 1, 1, 1) * 10
    y = mix_style(x)
    assert y.shape == x.shape
    norm = lambda t: (t - t.mean((2, 3), keepdim=True)) / t.std((2, 3), keepdim=True)
    assert torch.allclose(norm(y), norm(x), atol=1e-3)                   # the same content in every frame
    assert not torch.allclose(y.mean((2, 3)), x.mean((2, 3)), atol=0.5)   # other styles
    lo, hi = x.mean((2, 3)).min(), x.mean((2, 3)).max()
    assert (y.mean((2, 3)) >= lo - 1e-3).all() and (y.mean((2, 3)) <= hi + 1e-3).all()   # mixes, not new
    same = x[:1].repeat(5, 1, 1, 1)
    assert torch.allclose(mix_style(same), same, atol=1e-4)              # one style: nothing to mix
    assert torch.equal(mix_style(x[:1]), x[:1])


def test_hooks_act_in_training_only_and_leave_the_network_unchanged():
    torch.manual_seed(0)
    net = PolypNet(pretrained=False)
    keys = set(net.state_dict())
    x = torch.randn(4, 3, 64, 64)
    net.eval()
    before = net(x)[0]
    handles = add_mixstyle(net, [net.blocks16[4], net.blocks16[8]], p=1.0)
    assert torch.equal(net(x)[0], before)                                 # evaluation: identity
    net.train()
    calls = []
    net.blocks16[4].register_forward_hook(lambda m, i, o: calls.append(1))
    net(x)
    assert calls
    torch.manual_seed(1)
    a = net(x)[1]
    for h in handles:
        h.remove()
    torch.manual_seed(1)
    b = net(x)[1]
    assert not torch.allclose(a, b)                                       # training: styles mixed
    assert set(net.state_dict()) == keys
    with pytest.raises(ValueError, match="mixstyle: expected a probability"):
        add_mixstyle(net, [net.blocks16[4]], p=1.5)


def test_train_config_names_a_bad_mixstyle():
    from engines.training.train import TrainConfig
    with pytest.raises(ValueError, match="TrainConfig.mixstyle"):
        TrainConfig(mixstyle=-0.1)
