"""``hamjepa train`` and ``hamjepa bench``.

The engine does not know the evaluator: the top-level CLI registers these subcommands with a
``callbacks`` factory (``Config -> [Callback]``) that supplies the online monitor and the evaluation at the
end of training.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from hamjepa.config import Config, ConfigError
from hamjepa.engine.callbacks import Callback
from hamjepa.plugins import missing_plugins_hint

CallbackFactory = Callable[[Config], Sequence[Callback]]


def _split_config_args(items: list[str], resume: str | None) -> tuple[Path, list[str]]:
    """Positional arguments are ``[CONFIG] [key=value ...]``; with --resume the config defaults to the run's."""
    overrides = [a for a in items if "=" in a]
    configs = [a for a in items if "=" not in a]
    if len(configs) > 1:
        raise ConfigError(f"train: expected one CONFIG file, got {configs}; overrides look like key=value.")
    if configs:
        return Path(configs[0]), overrides
    if resume:
        if not (Path(resume) / "config.yaml").is_file():
            raise ConfigError(
                f"train: --resume {resume}: not a run folder (no {Path(resume) / 'config.yaml'}); pass the folder "
                "that `hamjepa train` wrote (it holds config.yaml and checkpoints/last.pt)"
            )
        return Path(resume) / "config.yaml", overrides
    raise ConfigError("train: pass a CONFIG file (e.g. configs/cifar100_hamjepa.yaml) or --resume RUN_DIR.")


def config_from_args(items: list[str], resume: str | None = None) -> Config:
    """Load the config named in ``items`` with its ``key=value`` overrides."""
    from hamjepa.components import load_config

    path, overrides = _split_config_args(items, resume)
    try:
        cfg = load_config(path, overrides)
    except ConfigError as err:  # a run trained with a plugin names it (hamjepa --import MODULE)
        from hamjepa.engine.run_logger import recorded_plugins  # run_logger imports torch: not for --help

        hint = missing_plugins_hint(recorded_plugins(Path(resume))) if resume else ""
        if not hint:
            raise
        raise ConfigError(f"{err}{hint}") from None
    if cfg.train.run_name is None and not resume:
        cfg.train.run_name = f"{path.stem}-seed{cfg.seed}"
    return cfg


def _run_train(args: argparse.Namespace, callbacks: CallbackFactory) -> int:
    from hamjepa.engine.launch import init_distributed_from_env, shutdown_distributed
    from hamjepa.engine.trainer import Trainer

    if args.replan_schedule and not args.resume:
        raise ConfigError("train: --replan-schedule only applies with --resume RUN_DIR")
    cfg = config_from_args(args.args, args.resume)
    init_distributed_from_env(cfg.train.device)
    try:
        run_dir = Path(args.resume) if args.resume else (Path(args.run_dir) if args.run_dir else None)
        trainer = Trainer(
            cfg,
            run_dir=run_dir,
            resume=bool(args.resume),
            callbacks=callbacks(cfg),
            replan_schedule=args.replan_schedule,
        )
        result = trainer.fit()
        if trainer.is_main and result.already_finished:
            print(
                f"{result.run_dir} has already finished its training ({result.epochs_done} epochs, "
                f"{result.steps_done} steps); nothing to do. Evaluate it with `hamjepa eval {result.run_dir}`, or "
                f"train longer with `hamjepa train --resume {result.run_dir} train.epochs=N --replan-schedule`."
            )
        elif trainer.is_main:
            print(f"trained {result.epochs_done} epochs ({result.steps_done} steps); run directory: {result.run_dir}")
    finally:
        shutdown_distributed()
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from hamjepa.engine.bench import benchmark_training
    from hamjepa.provenance import write_result

    cfg = config_from_args(args.args)
    result = benchmark_training(
        cfg, steps=args.steps, warmup=args.warmup, encoder_floor=not args.no_floor, profile=args.profile
    )
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_result(args.out, result)
    return 0


def _no_callbacks(cfg: Config) -> list[Callback]:
    return []


def add_parser(subparsers: argparse._SubParsersAction, *, callbacks: CallbackFactory = _no_callbacks) -> None:
    """Register ``train`` and ``bench``; ``callbacks(cfg)`` gives the training callbacks of each run."""
    p = subparsers.add_parser(
        "train",
        help="pre-train an encoder with a registered objective (objective.name) from a YAML config",
        description=(
            "Train from a YAML config with dotted overrides, e.g. `hamjepa train configs/cifar100_hamjepa.yaml "
            "data.path=data/cifar100.npz train.epochs=80 seed=1`. Writes RUN_DIR/{config.yaml, metrics.jsonl, "
            "tensorboard/, checkpoints/last.pt}. Multi-GPU: `torchrun --nproc_per_node=N -m hamjepa train ...`."
        ),
    )
    p.add_argument(
        "args",
        nargs="*",
        metavar="CONFIG [key=value ...]",
        help="YAML config file followed by dotted overrides (key.subkey=value)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue RUN_DIR exactly from its last checkpoint (config defaults to RUN_DIR/config.yaml)",
    )
    p.add_argument(
        "--replan-schedule",
        action="store_true",
        help=(
            "with --resume: accept overrides that change the learning-rate schedule (train.epochs, optim.lr, "
            "optim.warmup_epochs, optim.min_lr_ratio) and re-plan it from the current step; without this flag "
            "such a resume is refused"
        ),
    )
    p.add_argument("--run-dir", default=None, help="output directory (default: train.out_dir/train.run_name)")
    p.set_defaults(
        func=lambda args: _run_train(args, callbacks),
        interrupt_hint="continue from the last checkpoint with `hamjepa train --resume RUN_DIR`",
    )

    b = subparsers.add_parser(
        "bench",
        help="measure training throughput (views/s, s/epoch) and the encoder-only floor",
        description=(
            "Time the training step of a config on the current device after a warm-up (CUDA-synchronised), "
            "and the encoder alone (forward + backward on the same batch) in the same process. "
            "`train.step=compiled` benches the compiled step (it compiles during the warm-up; give it enough "
            "--warmup). E.g. `hamjepa bench configs/cifar100_hamjepa.yaml data.path=... train.step=compiled "
            "--profile --out bench.json`."
        ),
    )
    b.add_argument(
        "args",
        nargs="*",
        metavar="CONFIG [key=value ...]",
        help="YAML config file followed by dotted overrides (key.subkey=value)",
    )
    b.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    b.add_argument("--warmup", type=int, default=10, help="untimed warm-up steps (default 10)")
    b.add_argument("--no-floor", action="store_true", help="skip the encoder-only measurement")
    b.add_argument(
        "--profile",
        action="store_true",
        help=(
            "also profile a few steps (torch.profiler) and report host ops per step (all, and outside "
            "compiled regions), host syncs per step, and on CUDA the kernel time per step and GPU-busy fraction"
        ),
    )
    b.add_argument("--out", default=None, help="also write the result as JSON here")
    b.set_defaults(func=_run_bench)
