"""ResNet-18 token encoder (docs/spec.md §B), registered as ``model.name: resnet18_tokens`` (the default).

``TokenEncoder`` maps images ``[N, 3, H, W]`` to flat embeddings ``[N, D]``:

* ``mode="tokens"`` (every reported run): stem -> layer1 .. ``token_layer`` -> optional adaptive average
  pooling to ``token_hw x token_hw`` -> 1x1 conv (no bias) -> BatchNorm2d(``token_dim``) -> channel-last
  flatten, optionally with the ``q/p`` channel split (see :mod:`hamjepa.models.phase_space` for the exact
  index layout). Stages after ``token_layer`` are dropped right after torchvision builds the network, so
  they hold no parameters and cost no compute.
* ``mode="global"`` (not used in the paper): global average pool over layer4 -> Linear(512, ``global_out_dim``).

An optional MLP projector (Linear(D, 2048) -> BatchNorm1d -> ReLU -> Linear(2048, 2048)) may follow; the
phase split requires the identity projector (docs/spec.md §B.4).

``pooled_features`` gives the field's standard frozen feature (the global average of the backbone's last
feature map, before any head or projector) for the standard evaluation protocol (docs/EVALUATION.md);
``forward_with_pooled`` returns both from one backbone pass.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.models import resnet18

from hamjepa.models.phase_space import flatten_tokens
from hamjepa.models.protocol import Encoder, ExportArtifact, TokenLayout
from hamjepa.models.registry import register_encoder
from hamjepa.models.resnet_export import (
    RESNET18_FILE,
    TORCHVISION_STAGES,
    resnet18_state_dict,
    torchvision_missing_prefixes,
    torchvision_recipe,
)

__all__ = ["CANONICAL_IMAGE_SIZE", "PROJECTOR_DIM", "TokenEncoder"]

StemName = Literal["cifar", "imagenet"]
ModeName = Literal["tokens", "global"]
TokenLayerName = Literal["layer2", "layer3", "layer4"]
ProjectorName = Literal["identity", "mlp"]

PROJECTOR_DIM = 2048
"""Hidden and output width of the optional MLP projector (docs/spec.md §B.4)."""

CANONICAL_IMAGE_SIZE = {"cifar": 32, "imagenet": 224}
"""Image size each stem is built for; fixes the MLP projector's input width when ``token_hw`` is None."""

_STEMS = ("cifar", "imagenet")
_MODES = ("tokens", "global")
_STAGES = ("layer1", "layer2", "layer3", "layer4")
_STAGE_CHANNELS = {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}
_STAGE_STRIDE = {"layer1": 1, "layer2": 2, "layer3": 2, "layer4": 2}
_TOKEN_LAYERS = ("layer2", "layer3", "layer4")
_PROJECTORS = ("identity", "mlp")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _global_average(feature_map: Tensor) -> Tensor:
    """``[N, C, h, w] -> [N, C]``: the mean over the spatial grid (torchvision ResNet's ``avgpool`` + flatten)."""
    return torch.flatten(nn.functional.adaptive_avg_pool2d(feature_map, 1), 1)


def _halve(size: int) -> int:
    """Output size of a stride-2 conv/pool with kernel k and padding (k-1)//2 (ResNet's): ceil(size/2)."""
    return (size + 1) // 2


@register_encoder("resnet18_tokens")
class TokenEncoder(Encoder):
    """ResNet-18 encoder producing the headless token embedding of docs/spec.md §B (``model.name: resnet18_tokens``).

    Args (keyword-only):
        stem: ``"cifar"`` (3x3 stride-1 conv, no bias, no max-pool) or ``"imagenet"`` (torchvision's 7x7
            stride-2 conv + 3x3 stride-2 max-pool).
        mode: ``"tokens"`` (docs/spec.md §B.2) or ``"global"`` (docs/spec.md §B.3).
        token_layer: ``"layer2"`` (128 ch), ``"layer3"`` (256 ch) or ``"layer4"`` (512 ch); tokens mode only.
        token_hw: adaptive-average-pool the feature map to ``token_hw x token_hw`` before the projection;
            ``None`` keeps the native grid (8x8 for a 32 px CIFAR image at layer3). Tokens mode only.
        token_dim: channels per token after the 1x1 conv + BN (32 in the paper). Tokens mode only.
        split_qp: lay ``z`` out as ``[q; p]`` with channels ``[0, token_dim/2)`` of each token in ``q`` and the
            rest in ``p`` (docs/spec.md §B.2 step 6). Requires ``mode="tokens"`` (the split is per token) and
            ``projector="identity"``.
        projector: ``"identity"`` (every reported run) or ``"mlp"``.
        global_out_dim: output width of the global-mode linear head. Global mode only.

    The torchvision initialisation is kept (no zero-init of residual BNs). The CIFAR stem conv and the token
    1x1 conv are fresh ``nn.Conv2d`` modules with PyTorch's default initialisation; torchvision builds the
    full network first (so the retained layers get exactly the weights a full ResNet-18 would get from the
    same seed) and the unused stages are deleted immediately.

    Shapes: ``forward(x [N, 3, H, W]) -> [N, D]`` with ``D = output_dim(H)`` (square images).
    """

    def __init__(
        self,
        *,
        stem: StemName = "cifar",
        mode: ModeName = "tokens",
        token_layer: TokenLayerName = "layer3",
        token_hw: int | None = None,
        token_dim: int = 32,
        split_qp: bool = True,
        projector: ProjectorName = "identity",
        global_out_dim: int = 2048,
    ) -> None:
        super().__init__()
        if stem not in _STEMS:
            raise ValueError(f"TokenEncoder: unknown stem={stem!r}; valid: {', '.join(_STEMS)}")
        if mode not in _MODES:
            raise ValueError(f"TokenEncoder: unknown mode={mode!r}; valid: {', '.join(_MODES)}")
        if token_layer not in _TOKEN_LAYERS:
            raise ValueError(f"TokenEncoder: unknown token_layer={token_layer!r}; valid: {', '.join(_TOKEN_LAYERS)}")
        if token_hw is not None and (not _is_int(token_hw) or token_hw < 1):
            raise ValueError(f"TokenEncoder: token_hw must be None or a positive int, got {token_hw!r}")
        if not _is_int(token_dim) or token_dim < 1:
            raise ValueError(f"TokenEncoder: token_dim must be a positive int, got {token_dim!r}")
        if not _is_int(global_out_dim) or global_out_dim < 1:
            raise ValueError(f"TokenEncoder: global_out_dim must be a positive int, got {global_out_dim!r}")
        if not isinstance(split_qp, bool):
            raise ValueError(f"TokenEncoder: split_qp must be a bool, got {split_qp!r}")
        if projector not in _PROJECTORS:
            raise ValueError(f"TokenEncoder: unknown projector={projector!r}; valid: {', '.join(_PROJECTORS)}")
        if split_qp and projector != "identity":
            raise ValueError(
                f"TokenEncoder: split_qp=True requires projector='identity' (got {projector!r}); a projector "
                "would mix channels and destroy the per-token q/p semantics (docs/spec.md §B.4). Use projector="
                "'identity' or split_qp=False"
            )
        if split_qp and mode == "global":
            raise ValueError(
                "TokenEncoder: split_qp=True needs mode='tokens' (the phase split is per token); "
                "use mode='tokens' or split_qp=False"
            )
        if split_qp and token_dim % 2 != 0:
            raise ValueError(
                f"TokenEncoder: token_dim={token_dim} is odd but split_qp=True splits each token into q and p "
                "halves; use an even token_dim (e.g. 32) or split_qp=False"
            )

        self.stem: str = stem
        self.mode: str = mode
        self.token_layer: str = token_layer
        self.token_hw: int | None = token_hw
        self.token_dim: int = token_dim
        self.split_qp: bool = split_qp
        self.projector_name: str = projector
        self.global_out_dim: int = global_out_dim

        backbone = resnet18(weights=None)
        if stem == "cifar":
            backbone.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            backbone.maxpool = nn.Identity()
        last_stage = token_layer if mode == "tokens" else "layer4"
        self._stages: tuple[str, ...] = _STAGES[: _STAGES.index(last_stage) + 1]
        for name in _STAGES[len(self._stages) :]:
            delattr(backbone, name)
        del backbone.avgpool, backbone.fc
        self.backbone = backbone

        if mode == "tokens":
            in_channels = _STAGE_CHANNELS[token_layer]
            self.token_pool: nn.Module = nn.AdaptiveAvgPool2d(token_hw) if token_hw is not None else nn.Identity()
            self.token_proj = nn.Conv2d(in_channels, token_dim, kernel_size=1, bias=False)
            self.token_norm = nn.BatchNorm2d(token_dim)
        else:
            self.head = nn.Linear(_STAGE_CHANNELS["layer4"], global_out_dim)

        if projector == "mlp":
            in_dim = self._pre_projector_dim_for_layout()
            self.projector: nn.Module = nn.Sequential(
                nn.Linear(in_dim, PROJECTOR_DIM),
                nn.BatchNorm1d(PROJECTOR_DIM),
                nn.ReLU(inplace=True),
                nn.Linear(PROJECTOR_DIM, PROJECTOR_DIM),
            )
        else:
            self.projector = nn.Identity()
        self._projector_in_dim: int | None = self._pre_projector_dim_for_layout() if projector == "mlp" else None

    # ------------------------------------------------------------------ shapes
    def token_grid(self, image_size: int) -> tuple[int, int]:
        """Token grid ``(h, w)`` for a square ``image_size`` input (tokens mode)."""
        if not _is_int(image_size) or image_size < 1:
            raise ValueError(f"TokenEncoder.token_grid: image_size must be a positive int, got {image_size!r}")
        if self.mode != "tokens":
            raise ValueError("TokenEncoder.token_grid: only defined for mode='tokens'")
        if self.token_hw is not None:
            return self.token_hw, self.token_hw
        size = image_size
        if self.stem == "imagenet":
            size = _halve(_halve(size))  # 7x7/2 conv, then 3x3/2 max-pool
        for name in self._stages:
            if _STAGE_STRIDE[name] == 2:
                size = _halve(size)
        return size, size

    def _pre_projector_dim_for_layout(self) -> int:
        """Input width of the MLP projector.

        Global mode: ``global_out_dim``. Tokens mode: ``D`` at the token grid for ``token_hw`` or, without
        pooling, at the stem's canonical image size (32 px CIFAR, 224 px ImageNet); ``forward`` raises a
        ``ValueError`` for inputs that give another width.
        """
        if self.mode == "global":
            return self.global_out_dim
        h, w = self.token_grid(CANONICAL_IMAGE_SIZE[self.stem])
        return h * w * self.token_dim

    def token_layout(self, image_size: int) -> TokenLayout | None:
        """The flattened token grid of ``z`` (tokens mode, identity projector), else None."""
        if self.mode != "tokens" or self.projector_name != "identity":
            return None
        return TokenLayout(grid=self.token_grid(image_size), channels=self.token_dim, split_qp=self.split_qp)

    def output_dim(self, image_size: int) -> int:
        """Embedding width ``D`` produced for square ``image_size x image_size`` inputs."""
        if not _is_int(image_size) or image_size < 1:
            raise ValueError(f"TokenEncoder.output_dim: image_size must be a positive int, got {image_size!r}")
        if self.projector_name == "mlp":
            return PROJECTOR_DIM
        if self.mode == "global":
            return self.global_out_dim
        h, w = self.token_grid(image_size)
        return h * w * self.token_dim

    # ----------------------------------------------------------------- forward
    def backbone_features(self, x: Tensor) -> Tensor:
        """Run the stem and the retained stages: ``[N, 3, H, W] -> [N, C, h', w']``."""
        net = self.backbone
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        for name in self._stages:
            x = getattr(net, name)(x)
        return x

    def token_map(self, x: Tensor) -> Tensor:
        """Token map after pool -> 1x1 conv -> BN (docs/spec.md §B.2 steps 1-4):
        ``[N, 3, H, W] -> [N, token_dim, h, w]``."""
        if self.mode != "tokens":
            raise ValueError("TokenEncoder.token_map: only defined for mode='tokens'")
        return self._token_head(self.backbone_features(x))

    def _token_head(self, feature_map: Tensor) -> Tensor:
        return self.token_norm(self.token_proj(self.token_pool(feature_map)))

    def pooled_features(self, x: Tensor) -> Tensor:
        """The field's standard frozen feature: ``[N, 3, H, W] -> [N, C]``.

        The global average of the last feature map the backbone computes, before the token head, the global
        head and any projector: layer3 (256-d) for a layer3-token encoder, whose later stage was never built
        nor trained; layer4 (512-d) for a layer4-token or a global-mode encoder.
        """
        return _global_average(self.backbone_features(self._checked_images(x)))

    def forward_with_pooled(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(forward(x), pooled_features(x))`` from one pass through the backbone."""
        feature_map = self.backbone_features(self._checked_images(x))
        return self._embed(feature_map), _global_average(feature_map)

    def forward(self, x: Tensor) -> Tensor:
        """Encode images ``x [N, 3, H, W]`` (any memory format) into ``z [N, D]``."""
        return self._embed(self.backbone_features(self._checked_images(x)))

    @staticmethod
    def _checked_images(x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"TokenEncoder: expected images of shape [N, 3, H, W], got {tuple(x.shape)}")
        return x

    def _embed(self, feature_map: Tensor) -> Tensor:
        """The backbone's feature map ``[N, C, h', w']`` -> ``z [N, D]`` (token or global head, projector)."""
        if self.mode == "tokens":
            z = flatten_tokens(self._token_head(feature_map), split_qp=self.split_qp)
        else:
            z = self.head(_global_average(feature_map))
        if self._projector_in_dim is not None and z.shape[-1] != self._projector_in_dim:
            raise ValueError(
                f"TokenEncoder: the MLP projector was built for input width {self._projector_in_dim} "
                f"({CANONICAL_IMAGE_SIZE[self.stem]} px images for the {self.stem} stem) but this batch gives "
                f"{z.shape[-1]}; set token_hw to fix the token grid or feed {CANONICAL_IMAGE_SIZE[self.stem]} px images"
            )
        return self.projector(z)

    # ------------------------------------------------------------------ export
    def describe(self) -> str:
        """The model card's one-line description."""
        if self.mode == "global":
            return f"ResNet-18 `{self.stem}` stem, global mode (layer4 average pool -> linear {self.global_out_dim})"
        pool = f", pooled to {self.token_hw}x{self.token_hw}" if self.token_hw is not None else ""
        return (
            f"ResNet-18 `{self.stem}` stem, tokens from `{self.token_layer}`{pool}, token_dim {self.token_dim}, "
            f"split_qp {self.split_qp}, projector {self.projector_name}"
        )

    def export_artifacts(self, image_size: int) -> list[ExportArtifact]:
        """The trunk under torchvision's names (``resnet18_backbone.safetensors``) and its model-card recipe."""
        missing = torchvision_missing_prefixes(self)
        kept = [s for s in TORCHVISION_STAGES if s not in missing]
        token_head = self.mode == "tokens" and self.projector_name == "identity"
        recipe = (
            torchvision_recipe(
                stem=self.stem, kept_stages=kept, image_size=image_size, token_hw=self.token_hw, split_qp=self.split_qp
            )
            if token_head
            else "# this encoder's head is not a token head; use hamjepa.load for its embeddings"
        )
        section = [
            "## Load it with plain torchvision",
            "",
            f"`{RESNET18_FILE}` holds the ResNet-18 trunk under torchvision's names; the token head (1x1 conv + "
            "BatchNorm) is in `encoder.safetensors`. Run this inside this folder (it needs only torch, torchvision "
            "and safetensors); `embed(x)` on normalised images (the preprocessing above) returns the same `z` as "
            "`hamjepa.load(...).embed`.",
            "",
            "```python",
            recipe,
            "```",
        ]
        manifest = {"architecture": "torchvision.models.resnet18", "stem": self.stem, "missing_in_torchvision": missing}
        return [
            ExportArtifact(
                file=RESNET18_FILE,
                tensors=resnet18_state_dict(self),
                metadata={"architecture": "torchvision.models.resnet18", "stem": self.stem},
                manifest=manifest,
                card_markdown="\n".join(section),
            )
        ]

    def extra_repr(self) -> str:
        return (
            f"stem={self.stem}, mode={self.mode}, token_layer={self.token_layer}, token_hw={self.token_hw}, "
            f"token_dim={self.token_dim}, split_qp={self.split_qp}, projector={self.projector_name}, "
            f"global_out_dim={self.global_out_dim}"
        )
