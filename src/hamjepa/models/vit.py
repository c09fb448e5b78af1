"""Vision Transformer token encoder on timm (``model.name: vit``; ``pip install hamjepa[vit]``).

The ViT's patch tokens after the final norm (prefix tokens such as CLS dropped) form an ``h x w`` grid of width
``E``; the same token head as the ResNet encoder follows (optional adaptive average pool to ``token_hw`` ->
per-token linear map to ``token_dim``, a 1x1 conv without bias -> BatchNorm2d), flattened row-major with
channels last and the ``[q; p]`` split of :func:`~hamjepa.models.phase_space.flatten_tokens`, so every
objective and readout works unchanged. At 32 px with patch 4 the grid is 8 x 8 and ``D = 8 * 8 * token_dim``
(2048 for ``token_dim = 32``, as in every CIFAR config).

timm is imported only when the encoder is built; without it the constructor raises one line naming
``pip install 'hamjepa[vit]'``.
"""

from __future__ import annotations

import json
from typing import Any

from torch import Tensor, nn

from hamjepa.errors import HamjepaError
from hamjepa.models.phase_space import flatten_tokens
from hamjepa.models.protocol import Encoder, ExportArtifact, TokenLayout
from hamjepa.models.registry import register_encoder
from hamjepa.models.token_recipe import token_head_recipe

__all__ = ["VIT_BACKBONE_FILE", "ViTTokenEncoder"]

VIT_BACKBONE_FILE = "vit_backbone.safetensors"


def _positive_int(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"ViTTokenEncoder: {name} must be a positive int{' or None' if optional else ''}, got {value!r}"
        )


def _import_timm() -> Any:
    try:
        import timm
    except ModuleNotFoundError:
        raise HamjepaError("model.name=vit needs timm, which is not installed: pip install 'hamjepa[vit]'") from None
    return timm


@register_encoder("vit")
class ViTTokenEncoder(Encoder):
    """A timm Vision Transformer whose patch tokens become the HamJEPA token embedding (any objective applies).

    Args (keyword-only):
        arch: timm model name whose configuration is the starting point (``vit_tiny_patch16_224``: E 192,
            depth 12, 3 heads; ``vit_small_patch16_224``: E 384, depth 12, 6 heads). Random initialisation.
        image_size: input side the position embedding is built for (must equal ``data.image_size``).
        patch_size: patch side (4 at 32 px and 16 at 224 px give 8 x 8 and 14 x 14 grids).
        depth, embed_dim, num_heads: override the architecture's depth, width ``E`` and heads (None = keep).
        token_dim: channels per token after the projection + BatchNorm (32 in every config).
        token_hw: adaptive-average-pool the patch grid to ``token_hw x token_hw`` first (14 x 14 -> 8 x 8 for
            ImageNet); None keeps the patch grid.
        split_qp: ``z = [q; p]`` with the first half of every token's channels in ``q``.
        drop_path_rate: stochastic depth of the blocks (0 = off).

    Shapes: ``forward(x [N, 3, S, S]) -> [N, D]`` with ``D = h * w * token_dim``; :meth:`backbone_features`
    is timm's ``forward_features`` (``[N, prefix + h*w, E]``); :meth:`pooled_features` the mean patch token.
    """

    def __init__(
        self,
        *,
        arch: str = "vit_tiny_patch16_224",
        image_size: int = 32,
        patch_size: int = 4,
        depth: int | None = None,
        embed_dim: int | None = None,
        num_heads: int | None = None,
        token_dim: int = 32,
        token_hw: int | None = None,
        split_qp: bool = True,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(arch, str) or not arch:
            raise ValueError(f"ViTTokenEncoder: arch must be a timm model name, got {arch!r}")
        _positive_int("image_size", image_size)
        _positive_int("patch_size", patch_size)
        for name, value in (("depth", depth), ("embed_dim", embed_dim), ("num_heads", num_heads)):
            _positive_int(name, value, optional=True)
        _positive_int("token_dim", token_dim)
        _positive_int("token_hw", token_hw, optional=True)
        if image_size % patch_size:
            raise ValueError(
                f"ViTTokenEncoder: image_size={image_size} is not a multiple of patch_size={patch_size}; "
                "choose a patch size that divides the image side"
            )
        if not isinstance(split_qp, bool):
            raise ValueError(f"ViTTokenEncoder: split_qp must be a bool, got {split_qp!r}")
        if split_qp and token_dim % 2:
            raise ValueError(
                f"ViTTokenEncoder: token_dim={token_dim} is odd but split_qp=True splits each token into q and p "
                "halves; use an even token_dim (e.g. 32) or split_qp=False"
            )
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"ViTTokenEncoder: drop_path_rate must be in [0, 1), got {drop_path_rate!r}")
        self.arch = arch
        self.image_size = image_size
        self.token_dim = token_dim
        self.token_hw = token_hw
        self.split_qp = split_qp
        overrides = {"depth": depth, "embed_dim": embed_dim, "num_heads": num_heads}
        self.timm_kwargs: dict[str, Any] = {
            "img_size": image_size,
            "patch_size": patch_size,
            "num_classes": 0,
            "drop_path_rate": float(drop_path_rate),
            **{k: v for k, v in overrides.items() if v is not None},
        }
        timm = _import_timm()
        try:
            self.backbone = timm.create_model(arch, pretrained=False, **self.timm_kwargs)
        except (RuntimeError, ValueError, TypeError, AssertionError) as err:
            raise ValueError(f"ViTTokenEncoder: timm cannot build {arch!r} with {self.timm_kwargs}: {err}") from None
        if not hasattr(self.backbone, "patch_embed") or not hasattr(self.backbone, "num_prefix_tokens"):
            raise ValueError(f"ViTTokenEncoder: timm model {arch!r} is not a VisionTransformer (no patch_embed)")
        width = int(self.backbone.embed_dim)
        if num_heads is None and width % int(self.backbone.blocks[0].attn.num_heads):
            raise ValueError(f"ViTTokenEncoder: embed_dim={width} is not divisible by the heads; set num_heads")
        self.token_pool: nn.Module = nn.AdaptiveAvgPool2d(token_hw) if token_hw is not None else nn.Identity()
        self.token_proj = nn.Conv2d(width, token_dim, kernel_size=1, bias=False)
        self.token_norm = nn.BatchNorm2d(token_dim)

    # ------------------------------------------------------------------ shapes
    def _patch_grid(self) -> tuple[int, int]:
        h, w = self.backbone.patch_embed.grid_size
        return int(h), int(w)

    def token_grid(self, image_size: int) -> tuple[int, int]:
        """Token grid ``(h, w)`` for ``image_size`` inputs (which must be the built ``image_size``)."""
        if image_size != self.image_size:
            raise ValueError(
                f"ViTTokenEncoder: built for {self.image_size} px images (model.image_size) but asked for "
                f"{image_size} px; set model.image_size={image_size}"
            )
        return (self.token_hw, self.token_hw) if self.token_hw is not None else self._patch_grid()

    def token_layout(self, image_size: int) -> TokenLayout:
        """The flattened token grid of ``z``."""
        return TokenLayout(grid=self.token_grid(image_size), channels=self.token_dim, split_qp=self.split_qp)

    def output_dim(self, image_size: int) -> int:
        """Embedding width ``D = h * w * token_dim``."""
        return self.token_layout(image_size).dim

    # ----------------------------------------------------------------- forward
    def backbone_features(self, x: Tensor) -> Tensor:
        """timm's ``forward_features``: every token after the final norm, prefix ones first ``[N, T, E]``."""
        return self.backbone.forward_features(x)

    def patch_map(self, x: Tensor) -> Tensor:
        """Patch tokens as a map ``[N, E, h, w]`` (prefix tokens dropped, row-major patches)."""
        return self._as_map(self._patch_tokens(x))

    def pooled_features(self, images: Tensor) -> Tensor:
        """The mean patch token ``[N, E]`` (after the final norm, no token head)."""
        return self._patch_tokens(self._checked_images(images)).mean(dim=1)

    def forward_with_pooled(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(forward(x), pooled_features(x))`` from one pass through the transformer."""
        patches = self._patch_tokens(self._checked_images(x))
        return self._embed(patches), patches.mean(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """Encode normalised images ``[N, 3, S, S]`` into ``z [N, D]``."""
        return self._embed(self._patch_tokens(self._checked_images(x)))

    @staticmethod
    def _checked_images(x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"ViTTokenEncoder: expected images of shape [N, 3, H, W], got {tuple(x.shape)}")
        return x

    def _patch_tokens(self, x: Tensor) -> Tensor:
        """The patch tokens ``[N, h*w, E]`` of ``forward_features`` (prefix tokens dropped)."""
        return self.backbone_features(x)[:, self.backbone.num_prefix_tokens :]

    def _as_map(self, patches: Tensor) -> Tensor:
        h, w = self._patch_grid()
        return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], h, w)

    def _embed(self, patches: Tensor) -> Tensor:
        """Patch tokens ``[N, h*w, E]`` -> ``z [N, D]`` (optional pool -> 1x1 conv -> BN -> flatten)."""
        tokens = self.token_norm(self.token_proj(self.token_pool(self._as_map(patches))))
        return flatten_tokens(tokens, split_qp=self.split_qp)

    # ------------------------------------------------------------------ export
    def describe(self) -> str:
        """The model card's one-line description."""
        b = self.backbone
        h, w = self._patch_grid()
        pool = f", pooled to {self.token_hw}x{self.token_hw}" if self.token_hw is not None else ""
        return (
            f"ViT (timm `{self.arch}`: width {b.embed_dim}, depth {len(b.blocks)}, patch "
            f"{self.timm_kwargs['patch_size']}, {self.image_size} px, {h}x{w} patch tokens{pool}), "
            f"token_dim {self.token_dim}, split_qp {self.split_qp}"
        )

    def timm_recipe(self) -> str:
        """Python (run inside the export folder) that rebuilds the backbone with timm and the exact ``z``."""
        kwargs = ", ".join(f"{k}={v!r}" for k, v in self.timm_kwargs.items())
        lines = [
            "import timm",
            "import torch",
            "from safetensors.torch import load_file",
            "",
            "backbone = timm.create_model(",
            f'    "{self.arch}",',
            "    pretrained=True,",
            f'    pretrained_cfg_overlay=dict(file="{VIT_BACKBONE_FILE}", num_classes=0),',
            f"    {kwargs},",
            ").eval()",
            f"features = backbone.forward_features(torch.randn(1, 3, {self.image_size}, {self.image_size}))",
            "",
            "",
            "def patch_map(x: torch.Tensor) -> torch.Tensor:",
            '    """Patch tokens after the final norm as [N, E, h, w] (prefix tokens dropped)."""',
            "    patches = backbone.forward_features(x)[:, backbone.num_prefix_tokens :]",
            "    h, w = backbone.patch_embed.grid_size",
            "    return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], h, w)",
            "",
            "",
            *token_head_recipe(token_hw=self.token_hw, split_qp=self.split_qp, feature_map="patch_map(x)"),
        ]
        return "\n".join(lines)

    def export_artifacts(self, image_size: int) -> list[ExportArtifact]:
        """The backbone under timm's names (``vit_backbone.safetensors``) and its model-card recipe."""
        prefix = "backbone."
        tensors = {k[len(prefix) :]: v for k, v in self.state_dict().items() if k.startswith(prefix)}
        section = [
            "## Load it with plain timm",
            "",
            f"`{VIT_BACKBONE_FILE}` holds the ViT under timm's names; the token head (1x1 conv + BatchNorm) is in "
            "`encoder.safetensors`. Run this inside this folder (it needs only torch, timm and safetensors); "
            "`embed(x)` on normalised images (the preprocessing above) returns the same `z` as "
            "`hamjepa.load(...).embed`.",
            "",
            "```python",
            self.timm_recipe(),
            "```",
        ]
        facts = {"architecture": "timm", "arch": self.arch, "create_kwargs": self.timm_kwargs}
        return [
            ExportArtifact(
                file=VIT_BACKBONE_FILE,
                tensors=tensors,
                metadata={"architecture": "timm", "arch": self.arch, "create_kwargs": json.dumps(self.timm_kwargs)},
                manifest=facts,
                card_markdown="\n".join(section),
            )
        ]

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch}, image_size={self.image_size}, token_dim={self.token_dim}, "
            f"token_hw={self.token_hw}, split_qp={self.split_qp}"
        )
