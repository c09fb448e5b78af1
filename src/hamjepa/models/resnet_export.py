"""Export of the ResNet-18 token encoder: its trunk under torchvision's names and the plain-torchvision recipe.

``hamjepa export`` asks the encoder for its :class:`~hamjepa.models.protocol.ExportArtifact` list; for
:class:`~hamjepa.models.encoder.TokenEncoder` that is ``resnet18_backbone.safetensors`` (the trunk with the
``backbone.`` prefix dropped, which ``torchvision.models.resnet18()`` loads with ``strict=False``, missing only
the stages the encoder does not use and ``fc``) and a model-card section whose code rebuilds the exact
embedding from torch, torchvision and safetensors alone (the token head from ``encoder.safetensors``).
"""

from __future__ import annotations

from torch import Tensor, nn

from hamjepa.models.token_recipe import token_head_recipe

__all__ = [
    "RESNET18_FILE",
    "TORCHVISION_STAGES",
    "resnet18_state_dict",
    "torchvision_missing_prefixes",
    "torchvision_recipe",
]

RESNET18_FILE = "resnet18_backbone.safetensors"
TORCHVISION_STAGES = ("layer1", "layer2", "layer3", "layer4")


def resnet18_state_dict(encoder: nn.Module) -> dict[str, Tensor]:
    """The encoder's ResNet-18 trunk under torchvision's parameter names (``backbone.`` prefix dropped)."""
    prefix = "backbone."
    state = {k[len(prefix) :]: v for k, v in encoder.state_dict().items() if k.startswith(prefix)}
    if not state:
        raise ValueError("export: the encoder has no 'backbone.' ResNet-18 trunk to export")
    return state


def torchvision_missing_prefixes(encoder: nn.Module) -> list[str]:
    """Top-level torchvision ``resnet18`` modules the exported trunk lacks (stages not kept, and ``fc``)."""
    backbone = getattr(encoder, "backbone", None)
    kept = {name for name in TORCHVISION_STAGES if backbone is not None and hasattr(backbone, name)}
    return [name for name in TORCHVISION_STAGES if name not in kept] + ["fc"]


def torchvision_recipe(
    *, stem: str, kept_stages: list[str], image_size: int, token_hw: int | None, split_qp: bool
) -> str:
    """Python (run inside the export folder) that loads the trunk into plain torchvision and rebuilds the token
    embedding ``z`` exactly as ``hamjepa.load(...).embed`` computes it.

    The code defines ``trunk`` (normalised images -> the last kept stage's feature map), ``features`` (one
    random image through it), ``head`` (pool -> 1x1 conv -> BatchNorm from ``encoder.safetensors``) and
    ``embed(x) -> z [N, D]``.
    """
    lines = [
        "import torch",
        "import torchvision",
        "from safetensors.torch import load_file",
        "",
        "net = torchvision.models.resnet18()",
    ]
    if stem == "cifar":
        lines += [
            "net.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)  # CIFAR stem",
            "net.maxpool = torch.nn.Identity()",
        ]
    missing = [s for s in TORCHVISION_STAGES if s not in kept_stages] + ["fc"]
    lines += [
        f'result = net.load_state_dict(load_file("{RESNET18_FILE}"), strict=False)',
        "assert not result.unexpected_keys",
        f"# result.missing_keys: only {', '.join(m + '.*' for m in missing)} (parts this encoder does not use)",
        "trunk = torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, "
        + ", ".join(f"net.{s}" for s in kept_stages)
        + ").eval()",
        f"features = trunk(torch.randn(1, 3, {image_size}, {image_size}))  # the {kept_stages[-1]} feature map",
        "",
        *token_head_recipe(token_hw=token_hw, split_qp=split_qp, feature_map="trunk(x)"),
    ]
    return "\n".join(lines)
