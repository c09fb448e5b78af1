"""TokenEncoder: stems, token layout, output dims, modes and argument validation (docs/spec.md §B)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from hamjepa.models import PROJECTOR_DIM, TokenEncoder, split_qp


@pytest.fixture(scope="module")
def cifar_encoder() -> TokenEncoder:
    """The default (paper CIFAR) encoder in eval mode, shared by the read-only tests of this module."""
    torch.manual_seed(0)
    return TokenEncoder().eval()


def _stage_names(encoder: TokenEncoder) -> set[str]:
    return {name.split(".")[1] for name, _ in encoder.named_parameters() if name.startswith("backbone.")}


def test_defaults_are_the_paper_cifar_token_encoder(cifar_encoder: TokenEncoder) -> None:
    enc = cifar_encoder
    assert (enc.stem, enc.mode, enc.token_layer, enc.token_hw, enc.token_dim, enc.split_qp) == (
        "cifar",
        "tokens",
        "layer3",
        None,
        32,
        True,
    )
    assert isinstance(enc.projector, nn.Identity)
    conv1 = enc.backbone.conv1
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1) and conv1.padding == (1, 1)
    assert conv1.bias is None
    assert isinstance(enc.backbone.maxpool, nn.Identity)
    # Later stages are not kept: no layer4 parameters, no fc.
    assert _stage_names(enc) == {"conv1", "bn1", "layer1", "layer2", "layer3"}
    assert enc.token_proj.kernel_size == (1, 1) and enc.token_proj.bias is None
    assert enc.token_proj.in_channels == 256 and enc.token_proj.out_channels == 32
    assert isinstance(enc.token_norm, nn.BatchNorm2d) and enc.token_norm.affine


def test_cifar_32px_gives_2048_and_forward_shape(cifar_encoder: TokenEncoder) -> None:
    enc = cifar_encoder
    assert enc.output_dim(32) == 2048
    with torch.no_grad():
        z = enc(torch.randn(2, 3, 32, 32))
    assert z.shape == (2, 2048)
    assert torch.isfinite(z).all()


def test_gradients_reach_the_stem_and_token_projection() -> None:
    enc = TokenEncoder(token_dim=8)
    enc(torch.randn(2, 3, 8, 8)).square().mean().backward()
    for param in (enc.backbone.conv1.weight, enc.token_proj.weight, enc.token_norm.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_imagenet_224px_pooled_to_8x8_gives_2048() -> None:
    enc = TokenEncoder(stem="imagenet", token_hw=8)
    assert enc.backbone.conv1.kernel_size == (7, 7) and isinstance(enc.backbone.maxpool, nn.MaxPool2d)
    assert enc.output_dim(224) == 2048
    shapes: dict[str, tuple[int, ...]] = {}
    enc.backbone.layer3.register_forward_hook(lambda m, i, o: shapes.__setitem__("layer3", tuple(o.shape)))
    enc.token_pool.register_forward_hook(lambda m, i, o: shapes.__setitem__("pool", tuple(o.shape)))
    enc.eval()
    with torch.no_grad():
        z = enc(torch.randn(1, 3, 224, 224))
    assert z.shape == (1, 2048)
    assert shapes["layer3"] == (1, 256, 14, 14)  # docs/spec.md §B.2 step 2
    assert shapes["pool"] == (1, 256, 8, 8)


@pytest.mark.parametrize(
    ("kwargs", "image_size", "expected"),
    [
        ({"token_layer": "layer2"}, 16, 8 * 8 * 32),
        ({"token_layer": "layer4"}, 16, 2 * 2 * 32),
        ({"token_dim": 8}, 16, 4 * 4 * 8),
        ({"stem": "imagenet"}, 64, 4 * 4 * 32),
        ({"stem": "imagenet"}, 33, 3 * 3 * 32),  # odd sizes round up at every stride-2 stage
        ({"token_hw": 2}, 16, 2 * 2 * 32),
        ({"mode": "global", "global_out_dim": 64, "split_qp": False}, 16, 64),
    ],
)
def test_output_dim_matches_forward(kwargs: dict, image_size: int, expected: int) -> None:
    enc = TokenEncoder(**kwargs).eval()
    assert enc.output_dim(image_size) == expected
    with torch.no_grad():
        z = enc(torch.randn(2, 3, image_size, image_size))
    assert z.shape == (2, expected)


def test_retained_layers_match_a_full_torchvision_resnet18_from_the_same_seed() -> None:
    """torchvision builds the whole network before the unused stages are dropped, so the init matches."""
    torch.manual_seed(123)
    reference = resnet18(weights=None)
    torch.manual_seed(123)
    enc = TokenEncoder(stem="imagenet")
    for name in ("conv1", "layer1", "layer3"):
        ours, theirs = getattr(enc.backbone, name).state_dict(), getattr(reference, name).state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_layer4_tokens_keep_layer4() -> None:
    enc = TokenEncoder(token_layer="layer4")
    assert "layer4" in _stage_names(enc)
    assert enc.token_proj.in_channels == 512
    assert "layer3" not in _stage_names(TokenEncoder(token_layer="layer2"))


def test_forward_lands_token_channels_at_documented_qp_indices(cifar_encoder: TokenEncoder) -> None:
    enc = cifar_encoder
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens = enc.token_map(x)  # [2, 32, 8, 8]
        z = enc(x)
    assert tokens.shape == (2, 32, 8, 8)
    q, p = split_qp(z)
    for i, j, c in [(0, 0, 0), (3, 5, 7), (7, 7, 15), (2, 6, 11)]:
        assert q[:, (i * 8 + j) * 16 + c].equal(tokens[:, c, i, j])
        assert p[:, (i * 8 + j) * 16 + c].equal(tokens[:, 16 + c, i, j])


def test_pool_happens_before_projection_and_batchnorm() -> None:
    """Spec B.2 step 4 [D]: adaptive pooling is applied to the layer3 map, before 1x1 conv + BN."""
    enc = TokenEncoder(token_hw=2)
    seen: list[tuple[int, ...]] = []
    enc.token_proj.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    enc(torch.randn(2, 3, 16, 16))
    assert seen == [(2, 256, 2, 2)]


def test_channels_last_input_matches_contiguous() -> None:
    torch.manual_seed(1)
    enc = TokenEncoder(token_hw=2).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ref = enc(x)
        out = enc(x.to(memory_format=torch.channels_last))  # channels_last input only
        enc_cl = enc.to(memory_format=torch.channels_last)  # and a channels_last model
        out_cl = enc_cl(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_global_mode_and_mlp_projector() -> None:
    enc = TokenEncoder(mode="global", global_out_dim=10, split_qp=False)
    assert "layer4" in _stage_names(enc)
    assert enc.head.in_features == 512 and enc.head.out_features == 10
    assert enc(torch.randn(2, 3, 16, 16)).shape == (2, 10)

    proj = TokenEncoder(projector="mlp", split_qp=False, token_hw=2)
    layers = list(proj.projector)
    assert [type(m) for m in layers] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert layers[0].in_features == 2 * 2 * 32 and layers[3].out_features == PROJECTOR_DIM
    assert proj.output_dim(16) == PROJECTOR_DIM
    assert proj(torch.randn(3, 3, 16, 16)).shape == (3, PROJECTOR_DIM)


def test_mlp_projector_without_pooling_is_sized_for_the_stem_image_size() -> None:
    proj = TokenEncoder(projector="mlp", split_qp=False)
    assert proj.projector[0].in_features == 2048  # 8 x 8 tokens x 32 channels at 32 px
    with pytest.raises(ValueError, match="token_hw"):
        proj(torch.randn(2, 3, 16, 16))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"projector": "mlp", "split_qp": True}, "projector='identity'"),
        ({"token_dim": 31, "split_qp": True}, "token_dim=31 is odd"),
        ({"mode": "global", "global_out_dim": 8, "split_qp": True}, "needs mode='tokens'"),
        ({"stem": "resnet"}, "stem.*valid: cifar, imagenet"),
        ({"mode": "patches"}, "mode.*valid: tokens, global"),
        ({"token_layer": "layer1"}, "token_layer.*valid: layer2, layer3, layer4"),
        ({"projector": "linear", "split_qp": False}, "projector.*valid: identity, mlp"),
        ({"token_hw": 0}, "token_hw"),
        ({"token_dim": 0}, "token_dim"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TokenEncoder(**kwargs)


def test_odd_token_dim_without_split_is_allowed_and_bad_inputs_rejected() -> None:
    enc = TokenEncoder(token_dim=3, split_qp=False)
    assert enc.output_dim(32) == 8 * 8 * 3
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        enc(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="image_size"):
        enc.output_dim(0)


def test_constructor_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        TokenEncoder("cifar")  # type: ignore[misc]
