"""The training loop: one engine for every objective.

The engine knows nothing about Hamiltonians: it builds the encoder and the registered objective from the
config, feeds augmented views ``[V, B, 3, S, S]`` through one encoder forward (view-major, docs/spec.md §A.4), hands
``z: [V, B, D]`` to the objective and steps AdamW with the per-step warm-up + cosine schedule (docs/spec.md §G).

Per step there is no host synchronisation: loss terms stay on the device and are fetched every
``train.log_every`` steps (one sync), where the progress bar and the metric sinks are updated. A non-finite
loss is recorded on the device at the step it happens and reported at the next log point; the run then
stops with the step and its loss terms, keeping the last good checkpoint.

One job per module: :mod:`~hamjepa.engine.step` (one optimisation step), :mod:`~hamjepa.engine.nonfinite`
(the NaN guard), :mod:`~hamjepa.engine.meter` (loss sums on the device), :mod:`~hamjepa.engine.run_logger`
(run directory, metrics sinks), :mod:`~hamjepa.engine.device` (device, precision, DDP),
:mod:`~hamjepa.engine.optim` (AdamW groups, schedule), :mod:`~hamjepa.engine.train_state` (what a checkpoint
holds), :mod:`~hamjepa.engine.callbacks` (hooks such as the online monitor, passed in by the caller).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hamjepa import distributed as hdist
from hamjepa.config import Config
from hamjepa.data.from_config import train_stream_from_config
from hamjepa.engine.auxiliary import AuxiliaryOptimizer
from hamjepa.engine.build import build_model
from hamjepa.engine.callbacks import Callback
from hamjepa.engine.checkpoint import save_checkpoint
from hamjepa.engine.compiled_step import CompiledStepError, CompiledTrainStep
from hamjepa.engine.device import (
    configure_backends,
    resolve_device,
    resolve_precision,
    seed_everything,
    synchronise_batchnorm,
    training_device,
    wrap_ddp,
)
from hamjepa.engine.meter import LossMeter
from hamjepa.engine.module import JEPAModule, embed_views
from hamjepa.engine.nonfinite import NonFiniteGuard, NonFiniteLossError, saved_note
from hamjepa.engine.optim import build_optimizer, build_scheduler
from hamjepa.engine.run_logger import RunLogger, default_run_dir, progress_bar
from hamjepa.engine.step import StepOutput, TrainStep
from hamjepa.engine.train_state import (
    TrainingParts,
    check_schedule_on_resume,
    checkpoint_path,
    read_resume_state,
    restore_training_state,
    run_is_finished,
    training_state,
)
from hamjepa.engine.wandb_sink import require_wandb
from hamjepa.errors import HamjepaError
from hamjepa.models.ema import make_target_encoder

__all__ = [
    "JEPAModule",
    "NonFiniteLossError",
    "TrainResult",
    "Trainer",
    "embed_views",
    "resolve_device",
    "seed_everything",
]


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    run_dir: Path
    epochs_done: int
    steps_done: int
    last_checkpoint: Path | None
    final_terms: dict[str, float]
    already_finished: bool = False
    """A resumed run that had already completed its training: nothing was trained, evaluated or written."""


class Trainer:
    """Trains one run described by a :class:`Config`.

    Args:
        cfg: the validated config.
        run_dir: output folder (created); defaults to ``train.out_dir / (train.run_name or '<objective>-seed<seed>')``.
        resume: continue from ``run_dir/checkpoints/last.pt`` exactly (same batches, RNG, optimiser state).
        replan_schedule: on resume, accept a config whose learning-rate schedule differs from the run's
            (:data:`~hamjepa.engine.train_state.SCHEDULE_KEYS`, e.g. more ``train.epochs``): the schedule is
            re-planned over the new total from the current step. Without it such a resume is refused.
        callbacks: hooks called by :meth:`fit` (see :mod:`hamjepa.engine.callbacks`); ``train.monitor_every``
            and ``train.eval_at_end`` are carried out by the callbacks of
            :func:`hamjepa.evaluation.callbacks.callbacks_from_config`.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        run_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
        replan_schedule: bool = False,
    ) -> None:
        require_wandb(cfg.train.wandb)  # on every rank, before any work: one line naming `pip install wandb`
        self.cfg = cfg
        self.rank = hdist.get_rank()
        self.world_size = hdist.get_world_size()
        self.is_main = self.rank == 0
        self.device = training_device(cfg.train.device, self.world_size)
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
        self.resume = resume
        self.callbacks = list(callbacks)
        self.amp_dtype, self.param_dtype = resolve_precision(cfg.train.precision, self.device)

        self._resume_state = read_resume_state(self.run_dir, cfg) if resume else None
        if self._resume_state is not None:
            check_schedule_on_resume(self._resume_state, cfg, replan=replan_schedule, main=self.is_main)
        seed_everything(cfg.seed)
        configure_backends(self.device)
        encoder, objective = build_model(cfg)
        self.encoder = encoder.to(self.device, self.param_dtype)
        self.embed_dim = self.encoder.output_dim(cfg.data.image_size)
        self.objective = objective.to(self.device, self.param_dtype)
        if self.world_size > 1 and cfg.model.sync_batchnorm:
            self.encoder = synchronise_batchnorm(self.encoder, self.device)
            self.objective = synchronise_batchnorm(self.objective, self.device)  # e.g. VICReg's expander
        if cfg.model.channels_last:
            self.encoder = self.encoder.to(memory_format=torch.channels_last)
        self.target_encoder: nn.Module | None = None
        if self.objective.needs_target_encoder:
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
        self.model: nn.Module = wrap_ddp(self.module, self.device) if self.world_size > 1 else self.module

        self.stream = train_stream_from_config(cfg, device=self.device, rank=self.rank, world_size=self.world_size)
        self.steps_per_epoch = self.stream.steps_per_epoch
        self.optimizer, self.clip_params = build_optimizer(cfg.optim, self.module, self.objective, self.device)
        self.auxiliary = AuxiliaryOptimizer(self.objective, default_lr=cfg.optim.lr)
        self.scheduler = build_scheduler(
            cfg.optim, self.optimizer, epochs=cfg.train.epochs, steps_per_epoch=self.steps_per_epoch
        )
        self.train_step: TrainStep | CompiledTrainStep
        if cfg.train.step == "compiled":
            if self.world_size > 1:
                raise CompiledStepError(
                    "train: train.step=compiled runs in one process; use train.step=eager under torchrun."
                )
            if self.auxiliary.active:
                raise CompiledStepError(
                    "train: train.step=compiled does not step an objective's auxiliary parameters (e.g. HamSIGReg's "
                    "learnable spectrum); use train.step=eager."
                )
            self.train_step = CompiledTrainStep(
                self.module,
                self.stream,
                self.optimizer,
                self.scheduler,
                clip_params=self.clip_params,
                clip_grad_norm=cfg.optim.clip_grad_norm,
            )
        else:
            self.train_step = TrainStep(
                self.model,
                self.module,
                self.optimizer,
                self.scheduler,
                clip_params=self.clip_params,
                clip_grad_norm=cfg.optim.clip_grad_norm,
                target_encoder=self.target_encoder,
                auxiliary=self.auxiliary,
            )
        self.epoch = 0  # last completed epoch
        self.step = 0  # optimiser steps done
        self.logger = RunLogger(self.run_dir, is_main=self.is_main)
        self.guard = NonFiniteGuard(self.device)
        self.meter = LossMeter()
        self._saved_at: tuple[int, int] | None = None  # (epoch, step) of the last checkpoint written

    # ----------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Run (or continue) training to ``train.epochs`` / ``train.max_steps``; returns a summary."""
        t = self.cfg.train
        if self._resume_state is not None and run_is_finished(self._resume_state, self.cfg):
            state, self._resume_state = self._resume_state, None
            return TrainResult(self.run_dir, int(state["epoch"]), int(state["step"]), None, {}, already_finished=True)
        self._start()
        last_ckpt: Path | None = None
        done = t.max_steps is not None and self.step >= t.max_steps
        while self.epoch < t.epochs and not done:
            epoch = self.epoch + 1
            done, saved = self._run_epoch(epoch)
            last_ckpt = saved or last_ckpt
            epoch_complete = self.stream_position() == self.steps_per_epoch
            if epoch_complete:
                self._end_epoch(epoch)
            if (epoch_complete and (epoch % t.checkpoint_every == 0 or self.epoch == t.epochs)) or done:
                last_ckpt = self.save(epoch_complete=epoch_complete) or last_ckpt
        self.logger.close()
        result = TrainResult(self.run_dir, self.epoch, self.step, last_ckpt, self._final_terms)
        for cb in self.callbacks:
            cb.on_train_end(self, result)
        return result

    def _run_epoch(self, epoch: int) -> tuple[bool, Path | None]:
        """Train over the rest of ``epoch``; returns (``train.max_steps`` reached, last mid-epoch checkpoint)."""
        t = self.cfg.train
        self.objective.on_epoch_start(epoch)
        self.stream.set_epoch(epoch)  # keeps the position when resuming inside this epoch
        bar = progress_bar(
            self.steps_per_epoch, epoch, t.epochs, enabled=self.is_main and t.progress, initial=self.stream_position()
        )
        self.meter.start_epoch()
        saved: Path | None = None
        done = False
        for batch, labels in self.train_step.batches(self.stream):
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this step uses (the schedule moves on inside it)
            out = self.train_step(batch, self.step)
            self.step += 1
            stacked = self.meter.add(out.terms, labels.shape[0] * self.world_size)
            self.guard.record(self.step, out.loss, stacked, self.meter.names)
            if bar is not None:
                bar.update(1)
            self._log_skipped_files(epoch)
            last_in_epoch = self.stream_position() == self.steps_per_epoch
            if self.step % t.log_every == 0 or last_in_epoch or self.step == t.max_steps:
                self._log_train_point(epoch, out, stacked, bar, lr)
            if t.checkpoint_every_steps and self.step % t.checkpoint_every_steps == 0 and not last_in_epoch:
                saved = self.save(epoch_complete=False) or saved
            if t.max_steps is not None and self.step >= t.max_steps:
                done = True
                break
        if bar is not None:
            bar.close()
        return done, saved

    # ----------------------------------------------------------------------------------------------
    def _start(self) -> None:
        if self.resume:
            self.load()
        elif self.is_main and checkpoint_path(self.run_dir).exists():
            raise HamjepaError(
                f"train: {self.run_dir} already holds a run; continue it with --resume {self.run_dir} "
                "or choose another train.run_name."
            )
        t = self.cfg.train
        if (t.monitor_every > 0 or t.eval_at_end) and not self.callbacks:
            warnings.warn(
                "train.monitor_every / train.eval_at_end are carried out by callbacks; pass "
                "callbacks=hamjepa.evaluation.callbacks_from_config(cfg) to Trainer.",
                stacklevel=3,
            )
        self.logger.open(self.cfg)
        self.guard.reset()
        self.skipped_files = 0
        self._final_terms: dict[str, float] = {}
        for cb in self.callbacks:
            cb.on_train_start(self)
        self.encoder.train()
        self.objective.train()

    def _log_skipped_files(self, epoch: int) -> None:
        """One ``data_skip`` row per corrupt file the stream skipped (``data.on_corrupt=skip``)."""
        for path, reason in self.stream.pop_skipped():
            self.skipped_files += 1
            self.logger.log(
                {"kind": "data_skip", "step": self.step, "epoch": epoch, "path": path, "reason": reason}, self.step
            )

    def _log_train_point(self, epoch: int, out: StepOutput, stacked: Tensor, bar: Any, lr: float) -> None:
        """Fetch loss, terms and the guard in one sync; stop on a non-finite step, else log a ``train`` row."""
        loss, terms, (bad,) = self.meter.fetch(out.loss, stacked, self.guard.bad_step)
        if bad >= 0:
            self._raise_if_nonfinite(int(bad))
        row = {
            "kind": "train",
            "step": self.step,
            "epoch": epoch,
            "loss": loss,
            **terms,
            "lr": lr,
            "images_per_s": self.meter.images_per_s(),
        }
        self._final_terms = {k: v for k, v in row.items() if isinstance(v, float)}
        self.logger.log(row, self.step)
        if bar is not None:
            postfix = {"loss": f"{loss:.4f}", "img/s": f"{row['images_per_s']:.0f}"}
            if self.skipped_files:
                postfix["skipped"] = str(self.skipped_files)
            bar.set_postfix(postfix)
        self.meter.restart_window()

    def _end_epoch(self, epoch: int) -> None:
        """Mark ``epoch`` complete, log its mean terms and run the callbacks' epoch hooks."""
        self.epoch = epoch
        self.logger.log({"kind": "epoch", "epoch": epoch, "step": self.step, **self.meter.epoch_means()}, self.step)
        for cb in self.callbacks:
            result = cb.on_epoch_end(self, epoch)
            if result:
                self.logger.log({"kind": cb.kind, "epoch": epoch, "step": self.step, **result}, self.step)
        self.encoder.train()

    def _raise_if_nonfinite(self, bad_step: int | None = None) -> None:
        self.guard.raise_if_bad(
            steps_per_epoch=self.steps_per_epoch,
            saved=saved_note(checkpoint_path(self.run_dir), self._saved_at),
            log=lambda row: self.logger.log(row, self.step),
            bad_step=bad_step,
        )

    # ----------------------------------------------------------------------------------------------
    def _parts(self) -> TrainingParts:
        return TrainingParts(
            self.encoder,
            self.objective,
            self.target_encoder,
            self.optimizer,
            self.scheduler,
            self.stream,
            self.auxiliary,
        )

    def save(self, *, epoch_complete: bool) -> Path | None:
        """Write ``checkpoints/last.pt`` atomically (rank 0 only); never after a non-finite loss."""
        self._raise_if_nonfinite()
        self._saved_at = (self.epoch, self.step)
        if not self.is_main:
            return None
        state = training_state(self.cfg, self._parts(), epoch=self.epoch, step=self.step, epoch_complete=epoch_complete)
        path = save_checkpoint(state, checkpoint_path(self.run_dir))
        if epoch_complete and self.cfg.train.keep_epoch_checkpoints:
            save_checkpoint(state, path.parent / f"epoch_{self.epoch:04d}.pt")
        return path

    def load(self) -> None:
        """Restore everything from ``run_dir/checkpoints/last.pt`` (read and checked at construction)."""
        state = self._resume_state if self._resume_state is not None else read_resume_state(self.run_dir, self.cfg)
        self._resume_state = None
        self.epoch, self.step = restore_training_state(state, self._parts(), checkpoint_path(self.run_dir))
        self._saved_at = (self.epoch, self.step)

    def stream_position(self) -> int:
        """Batches already consumed in the current epoch (``steps_per_epoch`` at its end)."""
        return self.stream.position
