"""The model-card code that turns a backbone's feature map into the embedding ``z`` with plain torch.

Shared by the export recipes of every token encoder (ResNet-18 via torchvision, ViT via timm): the token head
(optional adaptive average pool -> 1x1 conv without bias -> BatchNorm2d) is read from ``encoder.safetensors``
(keys ``token_proj.weight`` and ``token_norm.*``) and the token map is flattened row-major, channels last, with
the ``[q; p]`` split of :func:`hamjepa.models.phase_space.flatten_tokens`.
"""

from __future__ import annotations

__all__ = ["token_head_recipe"]


def token_head_recipe(*, token_hw: int | None, split_qp: bool, feature_map: str) -> list[str]:
    """Lines of Python defining ``head`` and ``embed(x) -> z [N, D]``.

    Args:
        token_hw: the encoder's ``token_hw`` (adaptive pooling of the grid), or None.
        split_qp: the encoder's ``[q; p]`` layout.
        feature_map: a Python expression in ``x`` giving the backbone's ``[N, C, h, w]`` map.
    """
    pool = f"torch.nn.AdaptiveAvgPool2d({token_hw})" if token_hw is not None else "torch.nn.Identity()"
    lines = [
        "# The token head (pool -> 1x1 conv -> BatchNorm) is in encoder.safetensors.",
        'weights = load_file("encoder.safetensors")',
        'proj = weights["token_proj.weight"]  # [token_dim, C, 1, 1]',
        "conv = torch.nn.Conv2d(proj.shape[1], proj.shape[0], kernel_size=1, bias=False)",
        "conv.weight.data.copy_(proj)",
        "norm = torch.nn.BatchNorm2d(proj.shape[0])",
        'norm.load_state_dict({k[len("token_norm.") :]: v for k, v in weights.items() if k.startswith("token_norm.")})',
        f"head = torch.nn.Sequential({pool}, conv, norm).eval()",
        "",
        "",
        "@torch.no_grad()",
        "def embed(x: torch.Tensor) -> torch.Tensor:",
        '    """Normalised images [N, 3, S, S] -> z [N, D], the embedding hamjepa.load(...).embed returns."""',
        f"    tokens = head({feature_map})  # [N, C, h, w]",
        "    n, c, h, w = tokens.shape",
        "    z = tokens.permute(0, 2, 3, 1).reshape(n, h * w, c)  # row-major tokens, channels last",
    ]
    if split_qp:
        lines += [
            "    # z = [q; p]: the first C/2 channels of every token form q, the rest p, each token-major",
            "    return z.reshape(n, h * w, 2, c // 2).transpose(1, 2).reshape(n, h * w * c)",
        ]
    else:
        lines += ["    return z.reshape(n, h * w * c)"]
    return lines
