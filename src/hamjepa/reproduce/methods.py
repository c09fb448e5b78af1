"""The methods ``hamjepa reproduce`` can train: one per shipped ``configs/<dataset>_<method>.yaml``.

Methods are discovered from the config files that exist, so a new method (an objective or an encoder variant)
is a new config file, never an edit here. Kept free of heavy imports: the CLI lists the methods in ``--help``.
"""

from __future__ import annotations

from pathlib import Path


def configs_dir() -> Path:
    """The repository's ``configs/`` folder (next to ``src/``)."""
    return Path(__file__).resolve().parents[3] / "configs"


def available_methods(dataset: str) -> list[str]:
    """Sorted method names of ``dataset``: the ``<method>`` of every ``configs/<dataset>_<method>.yaml``."""
    prefix = f"{dataset}_"
    return sorted(p.stem[len(prefix) :] for p in configs_dir().glob(f"{prefix}*.yaml"))


def method_config_path(dataset: str, method: str) -> Path:
    """``configs/<dataset>_<method>.yaml``.

    Raises:
        ValueError: when no such config ships; the message lists the methods that do.
    """
    path = configs_dir() / f"{dataset}_{method}.yaml"
    if not path.is_file():
        methods = available_methods(dataset)
        if not methods:
            raise ValueError(f"reproduce: no configs/{dataset}_*.yaml found in {configs_dir()}; unknown dataset?")
        raise ValueError(f"reproduce: unknown method {method!r} for {dataset}; choose from {', '.join(methods)}")
    return path
