"""ViT token encoder on timm (beyond §3): backbone parity with timm, token layout, every objective on its output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml
from tests.objectives._objectives_testutils import at_step

from hamjepa.components import config_from_dict
from hamjepa.engine.build import build_encoder, build_model
from hamjepa.errors import HamjepaError
from hamjepa.models import ViTTokenEncoder, flatten_tokens

timm = pytest.importorskip("timm", reason="timm is the ViT encoder's optional dependency (pip install hamjepa[vit])")

ROOT = Path(__file__).resolve().parents[2]
TINY = {"depth": 2, "embed_dim": 48, "num_heads": 3}


@pytest.fixture(scope="module")
def tiny_vit() -> ViTTokenEncoder:
    torch.manual_seed(0)
    return ViTTokenEncoder(**TINY).eval()


def test_backbone_equals_timm_forward_features_on_the_same_weights(tiny_vit: ViTTokenEncoder) -> None:
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, **tiny_vit.timm_kwargs).eval()
    reference.load_state_dict(tiny_vit.backbone.state_dict())
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        tokens = reference.forward_features(x)
        assert torch.equal(tiny_vit.backbone_features(x), tokens)
        assert tokens.shape == (3, 1 + 64, 48)  # CLS first, then 8 x 8 patches
        patches = tokens[:, 1:]
        assert torch.equal(tiny_vit.pooled_features(x), patches.mean(dim=1))
        # z is the token head on the row-major patch grid, flattened channels-last with the [q; p] split
        grid = patches.transpose(1, 2).reshape(3, 48, 8, 8)
        head = tiny_vit.token_norm(tiny_vit.token_proj(grid))
        assert torch.equal(tiny_vit(x), flatten_tokens(head, split_qp=True))
        assert torch.equal(grid[:, :, 0, 1], patches[:, 1])  # token (0, 1) is the second patch
        z, pooled = tiny_vit.forward_with_pooled(x)  # one transformer pass gives both
        assert torch.equal(z, tiny_vit(x)) and torch.equal(pooled, tiny_vit.pooled_features(x))


def test_layout_sizes_and_pooling() -> None:
    enc = ViTTokenEncoder(**TINY)
    layout = enc.token_layout(32)
    assert (layout.grid, layout.channels, layout.split_qp) == ((8, 8), 32, True)
    assert enc.output_dim(32) == 2048 and enc(torch.randn(2, 3, 32, 32)).shape == (2, 2048)
    pooled = ViTTokenEncoder(**TINY, token_hw=4, token_dim=8, split_qp=False)
    assert pooled.output_dim(32) == 4 * 4 * 8 and pooled(torch.randn(2, 3, 32, 32)).shape == (2, 128)
    big = ViTTokenEncoder(**TINY, image_size=64, patch_size=16)
    assert big.token_layout(64).grid == (4, 4)
    with pytest.raises(ValueError, match="built for 32 px"):
        enc.output_dim(64)
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        ViTTokenEncoder(**TINY, patch_size=5)
    with pytest.raises(ValueError, match="token_dim=7 is odd"):
        ViTTokenEncoder(**TINY, token_dim=7)
    with pytest.raises(ValueError, match="timm cannot build 'resnet18'"):
        ViTTokenEncoder(arch="resnet18")
    with pytest.raises(ValueError, match=r"Unknown model \(vit_nope\)"):
        ViTTokenEncoder(arch="vit_nope")


def test_gradients_reach_the_patch_embedding() -> None:
    enc = ViTTokenEncoder(**TINY)
    enc(torch.randn(2, 3, 32, 32)).square().mean().backward()
    for param in (enc.backbone.patch_embed.proj.weight, enc.backbone.pos_embed, enc.token_proj.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_without_timm_the_error_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(HamjepaError, match=r"needs timm.*pip install 'hamjepa\[vit\]'") as info:
        ViTTokenEncoder(**TINY)
    assert "\n" not in str(info.value)


def _vit_config(name: str) -> dict:
    values = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    split = values["model"].get("split_qp", True)
    values["model"] = {"name": "vit", **TINY, "token_dim": 8, "token_hw": 4, "split_qp": split}
    return values


RESNET_CIFAR_CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("cifar100_*.yaml") if "_vit_" not in p.stem)


@pytest.mark.parametrize("config", RESNET_CIFAR_CONFIGS)
def test_every_objective_trains_on_the_vit_output(config: str) -> None:
    """Each shipped CIFAR config's objective, with its model section swapped for a tiny ViT."""
    values = _vit_config(config)
    cfg = config_from_dict(values)
    torch.manual_seed(0)
    encoder, objective = build_model(cfg)
    z = encoder(torch.randn(2 * 4, 3, 32, 32)).reshape(2, 4, -1)  # [V, B, D], view-major
    assert z.shape[-1] == 4 * 4 * 8
    kwargs = {"z_target": z.detach()} if getattr(objective, "needs_target_encoder", False) else {}
    objective.on_epoch_start(1)
    out = at_step(objective, z, 0, **kwargs)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert encoder.backbone.patch_embed.proj.weight.grad is not None


def test_the_shipped_configs_cover_the_builtin_objectives() -> None:
    names = {
        yaml.safe_load((ROOT / "configs" / f"{c}.yaml").read_text())["objective"]["name"] for c in RESNET_CIFAR_CONFIGS
    }
    assert {"hamjepa", "lejepa", "mlp_hjepa", "bijepa", "hamsigreg"} <= names


@pytest.mark.parametrize("name", ["cifar100_vit_hamjepa", "cifar100_vit_sigreg", "imagenet100_vit_hamjepa"])
def test_shipped_vit_configs_build_the_stated_encoder(name: str) -> None:
    values = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    cfg = config_from_dict(values)
    with torch.device("meta"):
        encoder = build_encoder(cfg)
    layout = encoder.token_layout(cfg.data.image_size)
    assert layout.grid == (8, 8) and layout.channels == 32 and layout.dim == 2048
    width = {"cifar100_vit_hamjepa": 192, "cifar100_vit_sigreg": 192, "imagenet100_vit_hamjepa": 384}[name]
    assert encoder.backbone.embed_dim == width and len(encoder.backbone.blocks) == 12
    assert encoder.backbone.patch_embed.grid_size == ((8, 8) if name.startswith("cifar") else (14, 14))
