"""Multi-view augmentation of whole uint8 batches on the device (docs/spec.md §A.2).

Per view, in order: RandomResizedCrop + horizontal flip (one ``grid_sample`` per view group), colour
jitter (p=0.8; brightness, contrast, saturation, hue in a random order per view), random grayscale,
Gaussian blur, solarize, then per-channel normalisation. The random parameters are drawn with
:meth:`MultiViewAugment.sample_params` (one vectorised call per op) and applied with
:meth:`MultiViewAugment.apply`, so tests can inspect them and a rank can apply its shard of the parameters
of a global batch.

Numerics: the pipeline runs in float32 on ``uint8 / 255`` and is not re-quantised to uint8 between ops
(docs/spec.md §A.2 [D]: equivalent up to rounding). Solarize thresholds at ``255 * v >= 127.5`` — the uint8
threshold "``>= 128``" applied to the value rounded to the uint8 grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hamjepa.data import augment_ops as ops
from hamjepa.data.augment_params import (
    AugmentSettings,
    GroupDraws,
    GroupParams,
    ViewGroupSpec,
    draw_group_uniforms,
    group_params_from_draws,
)

CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AugmentParams:
    """Sampled parameters of every view group (global first, then local; empty groups omitted)."""

    groups: list[GroupParams]

    def to(self, device: torch.device | str) -> AugmentParams:
        """Copy to ``device``."""
        return AugmentParams([g.to(device) for g in self.groups])

    def select_images(self, start: int, stop: int) -> AugmentParams:
        """Parameters of images ``start:stop`` of the batch (all views)."""
        return AugmentParams([g.select_images(start, stop) for g in self.groups])


@dataclass
class AugmentDraws:
    """The raw uniforms of every view group (global first, then local), see :class:`GroupDraws`."""

    groups: list[GroupDraws]

    def select_images(self, start: int, stop: int) -> AugmentDraws:
        """Uniforms of images ``start:stop`` of the batch (all views)."""
        return AugmentDraws([g.select_images(start, stop) for g in self.groups])

    def tensors(self) -> list[torch.Tensor]:
        """Every uniform tensor as one flat list (group by group)."""
        return [t for g in self.groups for t in g.tensors()]

    def with_tensors(self, tensors: list[torch.Tensor]) -> AugmentDraws:
        """The same layout with the tensors of :meth:`tensors` replaced (e.g. by graph inputs)."""
        out, start = [], 0
        for g in self.groups:
            n = len(g.tensors())
            out.append(g.with_tensors(list(tensors[start : start + n])))
            start += n
        return AugmentDraws(out)


def _check_prob(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")


def _check_range(name: str, r: tuple[float, float], lo: float = 0.0) -> tuple[float, float]:
    r = (float(r[0]), float(r[1]))
    if not lo < r[0] <= r[1]:
        raise ValueError(f"{name} must be (min, max) with {lo} < min <= max, got {r}")
    return r


class MultiViewAugment:
    """Spec-A.2 augmentation of a uint8 batch into ``n_global`` global and ``n_local`` local views.

    Args:
        n_global: number of global views (>= 1).
        global_size: output side of the global views.
        global_scale: RandomResizedCrop area-fraction range of the global views.
        n_local: number of local views (0 disables them).
        local_size, local_scale: their output side and area range (required when ``n_local > 0``).
        blur_kernel: odd Gaussian-blur kernel side (3 for CIFAR, 23 for ImageNet).
        mean, std: per-channel normalisation.
        ratio: aspect-ratio range of the crops.
        flip_p, jitter_p, grayscale_p, blur_p, solarize_p: op probabilities.
        brightness, contrast, saturation, hue: colour-jitter strengths (factors ``U[1-x, 1+x]``,
            hue shift ``U[-hue, hue]``).
        blur_sigma: blur std range.

    Calling the object on ``uint8 [B, 3, H, W]`` with a ``torch.Generator`` returns float32
    ``[V, B, 3, S, S]`` (all views of one size); :meth:`forward_groups` returns one tensor per view group.
    """

    def __init__(
        self,
        *,
        n_global: int,
        global_size: int,
        global_scale: tuple[float, float],
        blur_kernel: int,
        mean: Sequence[float],
        std: Sequence[float],
        n_local: int = 0,
        local_size: int | None = None,
        local_scale: tuple[float, float] | None = None,
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        flip_p: float = 0.5,
        jitter_p: float = 0.8,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.2,
        hue: float = 0.1,
        grayscale_p: float = 0.2,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        solarize_p: float = 0.2,
    ) -> None:
        if n_global < 1:
            raise ValueError(f"n_global must be >= 1, got {n_global}")
        if n_local < 0:
            raise ValueError(f"n_local must be >= 0, got {n_local}")
        if blur_kernel < 1 or blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be a positive odd integer, got {blur_kernel}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean/std must be 3 per-channel values with std > 0, got {mean} / {std}")
        for name, p in (
            ("flip_p", flip_p),
            ("jitter_p", jitter_p),
            ("grayscale_p", grayscale_p),
            ("blur_p", blur_p),
            ("solarize_p", solarize_p),
        ):
            _check_prob(name, p)
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        if min(brightness, contrast, saturation) < 0:
            raise ValueError("brightness, contrast and saturation must be >= 0")
        groups = [ViewGroupSpec(n_global, int(global_size), _check_range("global_scale", global_scale))]
        if n_local > 0:
            if local_size is None or local_scale is None:
                raise ValueError("n_local > 0 needs local_size and local_scale (e.g. 96 and (0.05, 0.4))")
            groups.append(ViewGroupSpec(n_local, int(local_size), _check_range("local_scale", local_scale)))
        if any(g.size < 1 for g in groups):
            raise ValueError(f"view sizes must be >= 1, got {[g.size for g in groups]}")
        self.groups: list[ViewGroupSpec] = groups
        self.blur_kernel = int(blur_kernel)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._norm_cache: dict[tuple[str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        self.settings = AugmentSettings(
            ratio=_check_range("ratio", ratio),
            flip_p=flip_p,
            jitter_p=jitter_p,
            brightness=brightness,
            contrast=contrast,
            saturation=saturation,
            hue=hue,
            grayscale_p=grayscale_p,
            blur_p=blur_p,
            blur_sigma=_check_range("blur_sigma", blur_sigma),
            solarize_p=solarize_p,
        )

    @property
    def num_views(self) -> int:
        """Total views per image ``V`` (global + local)."""
        return sum(g.n_views for g in self.groups)

    @property
    def single_size(self) -> bool:
        """True when every view has the same side (so :meth:`__call__` can stack them)."""
        return len({g.size for g in self.groups}) == 1

    # ------------------------------------------------------------------ sampling
    def sample_params(self, batch_size: int, height: int, width: int, generator: torch.Generator) -> AugmentParams:
        """Draw all random parameters for a batch of ``batch_size`` images of size ``height x width``.

        Returns parameters on the generator's device; the draw depends only on the generator state.
        Equals :meth:`params_from_draws` of :meth:`draw_uniforms`.
        """
        return self.params_from_draws(self.draw_uniforms(batch_size, generator), height, width)

    def draw_uniforms(self, batch_size: int, generator: torch.Generator) -> AugmentDraws:
        """The random part of :meth:`sample_params`: every uniform for ``batch_size`` images, in draw order."""
        return AugmentDraws([draw_group_uniforms(g, batch_size, generator) for g in self.groups])

    def params_from_draws(self, draws: AugmentDraws, height: int, width: int) -> AugmentParams:
        """The deterministic part of :meth:`sample_params` (pure tensor maths; traceable by ``torch.compile``)."""
        return AugmentParams(
            [
                group_params_from_draws(spec, self.settings, d, height, width)
                for spec, d in zip(self.groups, draws.groups, strict=True)
            ]
        )

    # ------------------------------------------------------------------ applying
    def _colour_jitter(self, x: torch.Tensor, p: GroupParams) -> torch.Tensor:
        """Brightness/contrast/saturation/hue in the per-view order ``p.jitter_order``, on ``x: [M,3,S,S]``.

        Brightness, contrast and saturation are all ``clamp(f * x + (1 - f) * D)`` with ``D`` = 0, the
        grayscale mean, or the grayscale image; the sub-ops before the hue step run as up to three blend
        passes, then hue once for every view, then up to three blend passes for the sub-ops after it.
        Inactive passes use ``f = 1`` (an exact identity).
        """
        factors = torch.stack((p.brightness, p.contrast, p.saturation), dim=1)  # [M, 3]
        ones = torch.ones_like(p.brightness)
        order = p.jitter_order
        hue_pos = (order == 3).to(torch.int64).argmax(dim=1)  # [M]

        def blend_pass(y: torch.Tensor, position: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
            op = order.gather(1, position.clamp(0, 3)[:, None])[:, 0]  # [M]
            f = torch.where(active & p.jitter, factors.gather(1, op.clamp(max=2)[:, None])[:, 0], ones)
            gray = ops.rgb_to_grayscale(y)
            gray_mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
            opm = op.reshape(-1, 1, 1, 1)
            degenerate = torch.where(opm == 0, torch.zeros_like(gray), torch.where(opm == 1, gray_mean, gray))
            return ops.blend(y, degenerate, f)

        for k in range(3):
            position = torch.full_like(hue_pos, k)
            x = blend_pass(x, position, position < hue_pos)
        x = torch.where(p.jitter.reshape(-1, 1, 1, 1), ops.adjust_hue(x, p.hue), x)
        for k in range(3):
            position = hue_pos + 1 + k
            x = blend_pass(x, position, position <= 3)
        return x

    def _after_crop(self, x: torch.Tensor, p: GroupParams) -> torch.Tensor:
        """Jitter, grayscale, blur, solarize, normalise ``x: float [M, 3, S, S]`` in [0, 1]."""
        x = self._colour_jitter(x, p)
        x = torch.where(p.grayscale.reshape(-1, 1, 1, 1), ops.rgb_to_grayscale(x).expand_as(x), x)
        x = torch.where(p.blur.reshape(-1, 1, 1, 1), ops.gaussian_blur(x, p.sigma, self.blur_kernel), x)
        x = torch.where(p.solarize.reshape(-1, 1, 1, 1), ops.solarize(x), x)
        mean, std = self.norm_tensors(x.device, x.dtype)
        return ops.normalize(x, mean, std)

    def norm_tensors(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """mean/std as ``[3]`` tensors on ``device``, cached (no host-to-device copy per step)."""
        key = (str(device), dtype)
        if key not in self._norm_cache:
            self._norm_cache[key] = (
                torch.tensor(self.mean, dtype=dtype).to(device),
                torch.tensor(self.std, dtype=dtype).to(device),
            )
        return self._norm_cache[key]

    @staticmethod
    def _check_images(images: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be uint8 [B, 3, H, W], got {images.dtype} {list(images.shape)}; "
                "convert NHWC arrays with .permute(0, 3, 1, 2)"
            )

    def apply(self, images: torch.Tensor, params: AugmentParams) -> list[torch.Tensor]:
        """Augment ``images: uint8 [B, 3, H, W]`` with ``params`` (sampled for ``B`` images).

        Returns:
            One float32 ``[n_views, B, 3, size, size]`` tensor per view group, on ``images.device``.
        """
        self._check_images(images)
        params = params.to(images.device)
        x = images.to(torch.float32).div_(255.0)
        out = []
        for g in params.groups:
            if g.batch_size != images.shape[0]:
                raise ValueError(
                    f"params cover {g.batch_size} images but the batch has {images.shape[0]}; "
                    "sample them for this batch or use params.select_images(start, stop)"
                )
            views = ops.resized_crop_flip(x, g.top, g.left, g.height, g.width, g.flip, g.size)
            flat = self._after_crop(views.reshape(-1, 3, g.size, g.size), g)
            out.append(flat.reshape(g.n_views, images.shape[0], 3, g.size, g.size))
        return out

    def apply_after_crop(self, crops: Sequence[torch.Tensor], params: AugmentParams) -> list[torch.Tensor]:
        """Augment views that were already cropped and resized (e.g. in DataLoader workers).

        Args:
            crops: one uint8 ``[n_views, B, 3, size, size]`` tensor per view group.
            params: parameters for the same ``B`` images; their crop boxes are ignored, the flip and all
                later ops are applied.

        Returns:
            One float32 ``[n_views, B, 3, size, size]`` tensor per view group.
        """
        if len(crops) != len(params.groups):
            raise ValueError(f"got {len(crops)} crop groups for {len(params.groups)} view groups")
        out = []
        for c, g in zip(crops, params.groups, strict=True):
            want = (g.n_views, 3, g.size, g.size)
            if c.dtype != torch.uint8 or c.ndim != 5 or (c.shape[0], *c.shape[2:]) != want:
                raise ValueError(
                    f"crops must be uint8 [{g.n_views}, B, 3, {g.size}, {g.size}], got {c.dtype} {list(c.shape)}"
                )
            g = g.to(c.device)
            flat = c.reshape(-1, 3, g.size, g.size).to(torch.float32).div_(255.0)
            flat = self._after_crop(ops.horizontal_flip(flat, g.flip), g)
            out.append(flat.reshape(c.shape[0], c.shape[1], 3, g.size, g.size))
        return out

    def forward_groups(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        """Sample parameters with ``generator`` and apply them; one ``[n_views, B, 3, S, S]`` per group."""
        self._check_images(images)
        params = self.sample_params(images.shape[0], images.shape[2], images.shape[3], generator)
        return self.apply(images, params)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment ``uint8 [B, 3, H, W]`` into float32 ``[V, B, 3, S, S]`` (global views first).

        Raises:
            ValueError: the local views have a different size; use :meth:`forward_groups`.
        """
        if not self.single_size:
            raise ValueError(
                "views have different sizes "
                f"{[g.size for g in self.groups]}; call forward_groups() to get one tensor per size"
            )
        groups = self.forward_groups(images, generator)
        return groups[0] if len(groups) == 1 else torch.cat(groups, dim=0)


def cifar100_augment(n_global: int = 2, n_local: int = 0) -> MultiViewAugment:
    """Spec-A.2 CIFAR-100 preset: 32 px global crops of scale (0.3, 1), 3x3 blur, CIFAR-100 mean/std.

    Local views (not used by the paper's configs) are 32 px crops of scale (0.05, 0.3).
    """
    return MultiViewAugment(
        n_global=n_global,
        global_size=32,
        global_scale=(0.3, 1.0),
        n_local=n_local,
        local_size=32,
        local_scale=(0.05, 0.3),
        blur_kernel=3,
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
    )


def imagenet_augment(n_global: int = 2, n_local: int = 0, local_size: int = 96) -> MultiViewAugment:
    """Spec-A.2 ImageNet-100 preset: 224 px global crops of scale (0.4, 1), 23x23 blur, ImageNet mean/std.

    Local views (not used by the paper's configs) are ``local_size`` px crops of scale (0.05, 0.4).
    """
    return MultiViewAugment(
        n_global=n_global,
        global_size=224,
        global_scale=(0.4, 1.0),
        n_local=n_local,
        local_size=local_size,
        local_scale=(0.05, 0.4),
        blur_kernel=23,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
