"""The training loop: one engine for every objective.

The engine knows nothing about Hamiltonians: it builds the encoder and the registered objective from the
config, feeds augmented views ``[V, B, 3, S, S]`` through one encoder forward (view-major, spec A.4), hands
``z: [V, B, D]`` to the objective and steps AdamW with the per-step warm-up + cosine schedule (spec G).

Per step there is no host synchronisation: loss terms stay on the device and are fetched every
``train.log_every`` steps (one sync), where the progress bar, ``metrics.jsonl`` and TensorBoard are updated.
A non-finite loss is recorded on the device at the step it happens and reported at the next log point;
the run then stops with the step and its loss terms, keeping the last good checkpoint.

Run directory layout::

    RUN_DIR/config.yaml          resolved config
    RUN_DIR/metrics.jsonl        one JSON object per log point / epoch / monitor run
    RUN_DIR/tensorboard/         TensorBoard events (when tensorboard is installed)
    RUN_DIR/checkpoints/last.pt  latest checkpoint (epoch_XXXX.pt with train.keep_epoch_checkpoints)
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hamjepa import distributed as hdist
from hamjepa.config import Config, config_from_dict, save_config
from hamjepa.data.from_config import train_stream_from_config
from hamjepa.engine.build import build_encoder, build_objective
from hamjepa.engine.checkpoint import (
    LAST_NAME,
    capture_rng_state,
    load_checkpoint,
    load_state_strict,
    restore_rng_state,
    save_checkpoint,
)
from hamjepa.engine.global_batchnorm import convert_to_global_batchnorm
from hamjepa.engine.schedule import WarmupCosineSchedule
from hamjepa.errors import CheckpointError, HamjepaError


class NonFiniteLossError(HamjepaError):
    """The loss became NaN or infinite; the message names the step and the loss terms."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the local CUDA device when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise HamjepaError("train: 'train.device' = cuda but no CUDA device is visible; use train.device=cpu.")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def embed_views(
    encoder: nn.Module | Callable[[Tensor], Tensor],
    views: Tensor | list[Tensor],
    *,
    channels_last: bool,
    amp_dtype: torch.dtype | None,
    input_dtype: torch.dtype | None = None,
) -> Tensor:
    """``[V, B, 3, S, S]`` -> ``z: [V, B, D]`` with one encoder forward over all views (spec A.4).

    ``views`` may also be a list of such tensors, one per view size (global views first, then local ones);
    each size is encoded in one forward and the embeddings are concatenated along ``V``. The encoder runs
    under ``autocast(amp_dtype)`` when one is given (bf16 on CUDA); ``input_dtype`` casts the views first
    (float64 runs).
    """
    if isinstance(views, (list, tuple)):
        return torch.cat(
            [
                embed_views(encoder, g, channels_last=channels_last, amp_dtype=amp_dtype, input_dtype=input_dtype)
                for g in views
            ]
        )
    v, b = views.shape[:2]
    x = views.reshape(v * b, *views.shape[2:])
    if input_dtype is not None:
        x = x.to(input_dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device_type=x.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    with autocast:
        z = encoder(x)
    return z.reshape(v, b, -1)


class JEPAModule(nn.Module):
    """Encoder + objective as one module, so DDP synchronises the predictor's gradients too.

    ``forward(views [V, B, 3, S, S], step, z_target=None) -> ObjectiveOutput``. The encoder runs under
    ``autocast`` (bf16 on CUDA when configured); the objective runs outside it (spec G.1).
    """

    def __init__(
        self,
        encoder: nn.Module,
        objective: nn.Module,
        *,
        channels_last: bool,
        amp_dtype: torch.dtype | None,
        input_dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.objective = objective
        self.channels_last = channels_last
        self.amp_dtype = amp_dtype
        self.input_dtype = input_dtype
        self.encode: nn.Module | Callable[[Tensor], Tensor] = encoder  # replaced by a compiled wrapper if asked

    def embed(self, views: Tensor | list[Tensor]) -> Tensor:
        """``[V, B, 3, S, S]`` -> ``z: [V, B, D]``."""
        return embed_views(
            self.encode, views, channels_last=self.channels_last, amp_dtype=self.amp_dtype, input_dtype=self.input_dtype
        )

    def forward(self, views: Tensor | list[Tensor], step: int, z_target: Tensor | None = None):
        """Embed the views and evaluate the objective."""
        return self.objective(self.embed(views), step=step, z_target=z_target)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    run_dir: Path
    epochs_done: int
    steps_done: int
    last_checkpoint: Path | None
    final_terms: dict[str, float]


class Trainer:
    """Trains one run described by a :class:`Config`.

    Args:
        cfg: the validated config.
        run_dir: output folder (created); defaults to ``train.out_dir / (train.run_name or 'run-seed<seed>')``.
        resume: continue from ``run_dir/checkpoints/last.pt`` exactly (same batches, RNG, optimiser state).
    """

    def __init__(self, cfg: Config, *, run_dir: str | Path | None = None, resume: bool = False) -> None:
        self.cfg = cfg
        self.rank = hdist.get_rank()
        self.world_size = hdist.get_world_size()
        self.is_main = self.rank == 0
        self.device = resolve_device(cfg.train.device) if self.world_size == 1 else _ddp_device(cfg.train.device)
        if run_dir is None:
            run_dir = Path(cfg.train.out_dir) / (cfg.train.run_name or f"{cfg.objective['name']}-seed{cfg.seed}")
        self.run_dir = Path(run_dir)
        self.resume = resume
        precision = cfg.train.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        self.amp_dtype = torch.bfloat16 if precision == "bf16" else None
        self.param_dtype = torch.float64 if precision == "fp64" else torch.float32

        self._resume_state: dict[str, Any] | None = None
        if resume:
            self._resume_state = self._read_resume_state()
        seed_everything(cfg.seed)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.encoder = build_encoder(cfg).to(self.device, self.param_dtype)
        self.embed_dim = self.encoder.output_dim(cfg.data.image_size)
        self.objective = build_objective(cfg, encoder_dim=self.embed_dim).to(self.device, self.param_dtype)
        if self.world_size > 1 and cfg.model.sync_batchnorm:
            if self.device.type == "cuda":
                self.encoder = nn.SyncBatchNorm.convert_sync_batchnorm(self.encoder)
            else:
                self.encoder = convert_to_global_batchnorm(self.encoder)
        if cfg.model.channels_last:
            self.encoder = self.encoder.to(memory_format=torch.channels_last)
        self.target_encoder: nn.Module | None = None
        if getattr(self.objective, "needs_target_encoder", False):
            from hamjepa.models.ema import make_target_encoder

            self.target_encoder = make_target_encoder(self.encoder)
        self.module = JEPAModule(
            self.encoder,
            self.objective,
            channels_last=cfg.model.channels_last,
            amp_dtype=self.amp_dtype,
            input_dtype=torch.float64 if self.param_dtype == torch.float64 else None,
        )
        if cfg.model.compile:
            self.module.encode = torch.compile(self.encoder)
        self.model: nn.Module = self.module
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            # find_unused_parameters: the potential MLP's output bias never gets a gradient (grad V ignores it).
            self.model = DistributedDataParallel(self.module, device_ids=ids, find_unused_parameters=True)

        self.stream = train_stream_from_config(cfg, device=self.device, rank=self.rank, world_size=self.world_size)
        self.steps_per_epoch = self.stream.steps_per_epoch
        self.optimizer, self.clip_params = self._build_optimizer()
        total = cfg.train.epochs * self.steps_per_epoch
        self.scheduler = WarmupCosineSchedule(
            self.optimizer,
            warmup_steps=round(cfg.optim.warmup_epochs * self.steps_per_epoch),
            total_steps=total,
            floor_lr=cfg.optim.lr * cfg.optim.min_lr_ratio,
        )
        self.epoch = 0  # last completed epoch
        self.step = 0  # optimiser steps done
        self.monitor = None
        self._tb = None
        self._bad_step: Tensor | None = None
        self._bad_terms: Tensor | None = None
        self._term_names: list[str] = []

    # ----------------------------------------------------------------------------------------------
    def _build_optimizer(self) -> tuple[torch.optim.Optimizer, list[nn.Parameter]]:
        o = self.cfg.optim
        pred_ids: set[int] = set()
        predictor = getattr(self.objective, "predictor", None)
        if o.predictor_lr is not None and predictor is not None:
            pred_ids = {id(p) for p in predictor.parameters()}
        main = [p for p in self.module.parameters() if p.requires_grad and id(p) not in pred_ids]
        groups: list[dict[str, Any]] = [{"params": main, "base_lr": o.lr, "name": "main"}]
        clip = list(main)
        if pred_ids:
            pred = [p for p in predictor.parameters() if p.requires_grad]
            groups.append({"params": pred, "base_lr": o.predictor_lr, "name": "predictor"})
            if o.clip_predictor:
                clip += pred
        for g in groups:
            g["lr"] = g["base_lr"]
        # The fused CUDA kernel is the fastest AdamW; foreach elsewhere (same maths).
        fused = self.device.type == "cuda"
        opt = torch.optim.AdamW(
            groups, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay, fused=fused, foreach=not fused
        )
        return opt, clip

    def _state(self, epoch_complete: bool) -> dict[str, Any]:
        return {
            "format": 1,
            "config": self.cfg.to_dict(),
            "encoder": self.encoder.state_dict(),
            "objective": self.objective.state_dict(),
            "target_encoder": None if self.target_encoder is None else self.target_encoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "epoch_complete": epoch_complete,
            "data": self.stream.state_dict(),
            "rng": capture_rng_state(),
        }

    def _raise_if_nonfinite(self) -> None:
        """Stop with the first non-finite step and its loss terms (one device sync)."""
        bad = int(self._bad_step) if self._bad_step is not None else -1
        if bad < 0:
            return
        named = dict(zip(self._term_names, self._bad_terms.tolist(), strict=True))
        epoch = (bad - 1) // self.steps_per_epoch + 1
        self._log({"kind": "error", "step": bad, "epoch": epoch, "terms": named})
        raise NonFiniteLossError(
            f"train: non-finite loss at step {bad} (epoch {epoch}); terms: "
            + ", ".join(f"{k}={v:.4g}" for k, v in named.items())
            + f". The last good checkpoint is kept in {self.run_dir / 'checkpoints'}; lower optim.lr or check the data."
        )

    def save(self, *, epoch_complete: bool) -> Path | None:
        """Write ``checkpoints/last.pt`` atomically (rank 0 only); never after a non-finite loss."""
        self._raise_if_nonfinite()
        if not self.is_main:
            return None
        ckpt_dir = self.run_dir / "checkpoints"
        path = save_checkpoint(self._state(epoch_complete), ckpt_dir / LAST_NAME)
        if epoch_complete and self.cfg.train.keep_epoch_checkpoints:
            save_checkpoint(self._state(epoch_complete), ckpt_dir / f"epoch_{self.epoch:04d}.pt")
        return path

    def _read_resume_state(self) -> dict[str, Any]:
        """Read ``run_dir/checkpoints/last.pt`` and check it belongs to this config (before building anything)."""
        file = self.run_dir / "checkpoints" / LAST_NAME
        # Always onto the CPU: the RNG states must stay CPU ByteTensors (torch.set_rng_state and numpy refuse
        # device tensors), and load_state_dict / the optimiser copy weights and moments to their parameters'
        # device anyway.
        state = load_checkpoint(file, map_location="cpu")
        try:
            saved = config_from_dict(state["config"])
        except ValueError as err:
            raise CheckpointError(f"checkpoint: {file} carries a config this version cannot read: {err}") from None
        if _identity(saved) != _identity(self.cfg):
            raise CheckpointError(
                f"checkpoint: {file} was written by another config (model/objective/data differ); resume with "
                f"the run's own config ({self.run_dir / 'config.yaml'}) or start a new run directory."
            )
        return state

    def load(self) -> None:
        """Restore everything from ``run_dir/checkpoints/last.pt`` (read and checked at construction)."""
        file = self.run_dir / "checkpoints" / LAST_NAME
        state = self._resume_state if self._resume_state is not None else self._read_resume_state()
        self._resume_state = None
        load_state_strict(self.encoder, state["encoder"], "encoder", file)
        load_state_strict(self.objective, state["objective"], "objective", file)
        if self.target_encoder is not None and state.get("target_encoder") is not None:
            load_state_strict(self.target_encoder, state["target_encoder"], "target encoder", file)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stream.load_state_dict(state["data"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        restore_rng_state(state["rng"])

    # ----------------------------------------------------------------------------------------------
    def _log(self, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self._tb.add_scalar(f"{row.get('kind', 'train')}/{key}", value, row.get("step", self.step))

    def _setup_run_dir(self) -> None:
        if not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.run_dir / "config.yaml")
        if self.cfg.train.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                self._tb = None

    def _train_step(self, views: Tensor | list[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        z_target = None
        if self.target_encoder is not None:
            with torch.no_grad():
                z_target = embed_views(
                    self.target_encoder,
                    views,
                    channels_last=self.module.channels_last,
                    amp_dtype=self.amp_dtype,
                    input_dtype=self.module.input_dtype,
                )
        out = self.model(views, self.step, z_target)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.cfg.optim.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.clip_params, self.cfg.optim.clip_grad_norm, foreach=True)
        self.optimizer.step()
        self.scheduler.step()
        if self.target_encoder is not None:
            from hamjepa.models.ema import update_ema

            update_ema(self.target_encoder, self.encoder, self.objective.ema_momentum(self.step))
        return out.loss.detach(), out.terms

    def fit(self) -> TrainResult:
        """Run (or continue) training to ``train.epochs`` / ``train.max_steps``; returns a summary."""
        cfg = self.cfg
        if self.resume:
            self.load()
        elif self.is_main and (self.run_dir / "checkpoints" / LAST_NAME).exists():
            raise HamjepaError(
                f"train: {self.run_dir} already holds a run; continue it with --resume {self.run_dir} "
                "or choose another train.run_name."
            )
        self._setup_run_dir()
        if cfg.train.monitor_every > 0:
            self.monitor = self._build_monitor()
        max_steps = cfg.train.max_steps
        last_ckpt: Path | None = None
        final_terms: dict[str, float] = {}
        bad_step = self._bad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        bad_terms: Tensor | None = None
        term_names: list[str] = []
        self.encoder.train()
        self.objective.train()
        done = max_steps is not None and self.step >= max_steps
        while self.epoch < cfg.train.epochs and not done:
            epoch = self.epoch + 1
            self.objective.on_epoch_start(epoch)
            self.stream.set_epoch(epoch)  # keeps the position when resuming inside this epoch
            bar = _progress(self.steps_per_epoch, epoch, cfg, self.is_main, initial=self.stream_position())
            t_log, imgs = time.perf_counter(), 0
            epoch_sum: Tensor | None = None  # per-term sums over this epoch's steps, on the device
            epoch_steps = 0
            for views, labels in self.stream:
                loss, terms = self._train_step(views)
                self.step += 1
                imgs += labels.shape[0] * self.world_size
                if not term_names:
                    term_names = list(terms)
                    bad_terms = torch.zeros(len(term_names), device=self.device)
                stacked = torch.stack([terms[k].float() for k in term_names])
                is_bad = ~torch.isfinite(loss) & (bad_step < 0)
                bad_step = torch.where(is_bad, torch.full_like(bad_step, self.step), bad_step)
                bad_terms = torch.where(is_bad, stacked, bad_terms)
                self._bad_step, self._bad_terms, self._term_names = bad_step, bad_terms, term_names
                epoch_sum = stacked if epoch_sum is None else epoch_sum + stacked
                epoch_steps += 1
                if bar is not None:
                    bar.update(1)
                last_in_epoch = self.stream_position() == self.steps_per_epoch
                if self.step % cfg.train.log_every == 0 or last_in_epoch or self.step == max_steps:
                    values = torch.cat([loss.float().reshape(1), stacked, bad_step.float().reshape(1)]).tolist()
                    if values[-1] >= 0:
                        self._raise_if_nonfinite()
                    dt = time.perf_counter() - t_log
                    row = {
                        "kind": "train",
                        "step": self.step,
                        "epoch": epoch,
                        "loss": values[0],
                        **dict(zip(term_names, values[1:-1], strict=True)),
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "images_per_s": imgs / max(dt, 1e-9),
                    }
                    final_terms = {k: v for k, v in row.items() if isinstance(v, float)}
                    self._log(row)
                    if bar is not None:
                        bar.set_postfix({"loss": f"{values[0]:.4f}", "img/s": f"{row['images_per_s']:.0f}"})
                    t_log, imgs = time.perf_counter(), 0
                every = cfg.train.checkpoint_every_steps
                if every and self.step % every == 0 and not last_in_epoch:
                    last_ckpt = self.save(epoch_complete=False) or last_ckpt
                if max_steps is not None and self.step >= max_steps:
                    done = True
                    break
            if bar is not None:
                bar.close()
            epoch_complete = self.stream_position() == self.steps_per_epoch
            if epoch_complete:
                self.epoch = epoch
                self._log(
                    {
                        "kind": "epoch",
                        "epoch": epoch,
                        "step": self.step,
                        **_epoch_means(term_names, epoch_sum, epoch_steps),
                    }
                )
                if self.monitor is not None and epoch % cfg.train.monitor_every == 0:
                    result = self.monitor.maybe_run(self.encoder, epoch)
                    if result:
                        self._log({"kind": "monitor", "epoch": epoch, "step": self.step, **result})
                    self.encoder.train()
            if (epoch_complete and (epoch % cfg.train.checkpoint_every == 0 or self.epoch == cfg.train.epochs)) or done:
                last_ckpt = self.save(epoch_complete=epoch_complete) or last_ckpt
        if self._tb is not None:
            self._tb.close()
        return TrainResult(self.run_dir, self.epoch, self.step, last_ckpt, final_terms)

    def _build_monitor(self):
        """The online kNN monitor on a fixed stratified subset of the eval data (spec H.2, one k)."""
        from hamjepa.data import build_eval_data
        from hamjepa.data.from_config import resolve_data_path
        from hamjepa.evaluation.monitor import OnlineKNNMonitor

        t = self.cfg.train
        d = self.cfg.data
        data = build_eval_data(
            d.dataset,
            resolve_data_path(d),
            batch_size=d.eval_batch_size,
            subset=max(t.monitor_train_size, t.monitor_test_size),
        )

        def take(batches, n: int) -> tuple[Tensor, Tensor]:
            xs, ys, have = [], [], 0
            for x, y in batches():
                xs.append(x)
                ys.append(y)
                have += x.shape[0]
                if have >= n:
                    break
            return torch.cat(xs)[:n], torch.cat(ys)[:n]

        xtr, ytr = take(data.train, t.monitor_train_size)
        xte, yte = take(data.test, t.monitor_test_size)
        return OnlineKNNMonitor(
            xtr,
            ytr,
            xte,
            yte,
            mean=data.mean,
            std=data.std,
            k=min(20, xtr.shape[0]),
            every_n_epochs=t.monitor_every,
            num_classes=data.num_classes,
            batch_size=d.eval_batch_size,
            device=self.device,
        )

    def stream_position(self) -> int:
        """Batches already consumed in the current epoch (``steps_per_epoch`` at its end)."""
        return int(self.stream.state_dict()["position"])


def _epoch_means(names: list[str], sums: Tensor | None, steps: int) -> dict[str, float]:
    """``{'mean_<term>': value}`` over the steps of one epoch (one device sync)."""
    if sums is None or steps == 0:
        return {}
    return {f"mean_{k}": v for k, v in zip(names, (sums / steps).tolist(), strict=True)}


def _identity(cfg: Config) -> dict[str, Any]:
    d = cfg.to_dict()
    return {
        "model": d["model"],
        "predictor": d["predictor"],
        "objective": d["objective"],
        "dataset": d["data"]["dataset"],
        "batch_size": d["data"]["batch_size"],
    }


def _ddp_device(requested: str) -> torch.device:
    """This rank's device under torchrun: ``cuda:LOCAL_RANK`` unless ``train.device=cpu`` or no GPU is visible."""
    if requested != "cpu" and torch.cuda.is_available():
        import os

        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _progress(total: int, epoch: int, cfg: Config, is_main: bool, initial: int = 0):
    if not (is_main and cfg.train.progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=f"epoch {epoch}/{cfg.train.epochs}",
        leave=False,
        dynamic_ncols=True,
    )
