"""TokenEncoder.pooled_features (the standard protocol's feature) against torchvision's ResNet-18 layers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn
from torchvision.models import resnet18

from hamjepa.evaluation import extract_features_with_pooled
from hamjepa.models import TokenEncoder, flatten_tokens


def _torchvision_pooled(encoder: TokenEncoder, x: Tensor, last_stage: str) -> Tensor:
    """torchvision's resnet18 loaded with the encoder's backbone weights, run to ``last_stage``, then its own
    ``avgpool`` and a flatten: the global average of that stage's feature map, computed independently."""
    net = resnet18(weights=None)
    if encoder.stem == "cifar":
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    stages = ("layer1", "layer2", "layer3", "layer4")[: int(last_stage[-1])]
    missing, unexpected = net.load_state_dict(encoder.backbone.state_dict(), strict=False)
    assert not unexpected and missing and not any(k.startswith(("conv1.", "bn1.", *stages)) for k in missing)
    net.eval()
    h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    for stage in stages:
        h = getattr(net, stage)(h)
    return torch.flatten(net.avgpool(h), 1)


@pytest.mark.parametrize(
    ("kwargs", "size", "last_stage", "dim"),
    [
        ({}, 32, "layer3", 256),  # the paper's CIFAR encoder: layer3 tokens, layer4 never built
        ({"token_layer": "layer2", "token_dim": 8}, 16, "layer2", 128),
        ({"stem": "imagenet", "token_hw": 2, "token_dim": 8}, 64, "layer3", 256),
        ({"mode": "global", "global_out_dim": 16, "split_qp": False}, 32, "layer4", 512),
    ],
)
def test_pooled_feature_is_the_global_average_of_the_last_stage(
    kwargs: dict, size: int, last_stage: str, dim: int
) -> None:
    torch.manual_seed(0)
    encoder = TokenEncoder(**kwargs).eval()
    for module in encoder.modules():  # non-trivial BatchNorm statistics, so eval mode really matters
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 3, size, size)
    with torch.no_grad():
        pooled = encoder.pooled_features(x)
        reference = _torchvision_pooled(encoder, x, last_stage)
    assert pooled.shape == (3, dim)
    torch.testing.assert_close(pooled, reference, rtol=0, atol=0)


def test_forward_with_pooled_is_forward_and_pooled_features_from_one_pass() -> None:
    torch.manual_seed(0)
    encoder = TokenEncoder(token_dim=8).eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        z, pooled = encoder.forward_with_pooled(x)
        assert torch.equal(z, encoder(x)) and torch.equal(pooled, encoder.pooled_features(x))
        assert torch.equal(z, flatten_tokens(encoder.token_map(x), split_qp=True))  # forward's docs/spec.md §B.2 layout
    calls = []
    encoder.backbone.conv1.register_forward_hook(lambda *_: calls.append(1))
    images, labels = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8), torch.arange(6)

    def two_batches() -> Iterator[tuple[Tensor, Tensor]]:
        yield images[:3], labels[:3]
        yield images[3:], labels[3:]

    feats, pooled, y = extract_features_with_pooled(encoder, two_batches, (0.5,) * 3, (0.25,) * 3, "cpu")
    assert len(calls) == 2  # one backbone pass per batch gives both features
    assert feats.shape == (6, 4 * 4 * 8) and pooled.shape == (6, 256) and torch.equal(y, labels)


def test_pooled_features_rejects_non_image_input() -> None:
    with pytest.raises(ValueError, match=r"expected images of shape \[N, 3, H, W\]"):
        TokenEncoder(token_dim=8).pooled_features(torch.randn(2, 16))
