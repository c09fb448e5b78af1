"""Weights & Biases logging (``train.wandb``): a real offline run receives the train scalars; a missing package
fails fast with one line; the config key reads YAML's ``off``; only rank 0 logs.

The offline run is read back from its ``run-<id>.wandb`` transaction log (LevelDB-style log records holding
``wandb_internal_pb2.Record`` protobufs), so the test checks what W&B itself stored, without a network.
"""

from __future__ import annotations

import json
import re
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.engine.helpers import REPO, tiny_config, write_tiny_cifar

from hamjepa.cli import main
from hamjepa.components import load_config
from hamjepa.config import ConfigError, save_config
from hamjepa.engine.run_logger import RunLogger
from hamjepa.engine.wandb_sink import WANDB_ID_NAME, WandbUnavailableError, wandb_scalars

_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_wandb_records(path: Path) -> list[Any]:
    """Every record of a ``.wandb`` file: a 7-byte file header, then 7-byte-headed chunks in 32 KiB blocks."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pending, payloads = 7, b"", []
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # block trailer too short for a header: padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == _FULL:
            payloads.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            payloads.append(pending + chunk)
        else:
            break
    records = []
    for payload in payloads:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def finished_records(path: Path, timeout_s: float = 60.0) -> list[Any]:
    """The records of a ``.wandb`` file once it holds the run's ``exit`` record.

    ``run.finish()`` can return before W&B's writer process has flushed the file (seen under load), so wait
    for the closing record instead of reading a half-written log.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_wandb_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def offline_history(run_dir: Path) -> tuple[dict[int, dict[str, Any]], Any]:
    """``{step: {key: value}}`` of the logged rows and the run record of the offline run(s) in ``run_dir``."""
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert files, f"no offline W&B run under {run_dir / 'wandb'}"
    history: dict[int, dict[str, Any]] = {}
    run = None
    for path in files:
        for record in finished_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "history":
                items = record.history.item
                row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}
                history.setdefault(int(row["_step"]), {}).update(row)
            elif kind == "run":
                run = record.run
    return history, run


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "wandb-home"
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def _train(tmp_path: Path, run_dir: Path, *, resume: bool = False, **extra: object):
    from hamjepa.engine.trainer import Trainer

    data = tmp_path / "tiny.npz"
    if not data.exists():
        write_tiny_cifar(data)
    cfg = tiny_config(
        "cifar100_hamjepa", data, **{"train.wandb": "offline", "train.epochs": 1, "data.batch_size": 4, **extra}
    )
    return Trainer(cfg, run_dir=run_dir, resume=resume).fit()


def _jsonl(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == kind]


@pytest.mark.slow
def test_offline_run_receives_every_train_scalar_and_resume_continues_it(tmp_path: Path, wandb_env: None) -> None:
    pytest.importorskip("wandb")  # a dev dependency; the other tests here do not need it
    run_dir = tmp_path / "run"
    _train(tmp_path, run_dir, **{"train.max_steps": 2})
    history, run = offline_history(run_dir)
    train_rows = _jsonl(run_dir, "train")
    assert [r["step"] for r in train_rows] == [1, 2]
    for row in train_rows:
        logged = history[row["step"]]
        for key in ("loss", "pred", "budget", "logdet", "lr"):
            assert logged[f"train/{key}"] == pytest.approx(row[key], rel=1e-12, abs=0), (row["step"], key)
        assert logged["epoch"] == row["epoch"] == 1
    assert run is not None and run.display_name == "run" and run.project == "hamjepa"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["train"]["wandb"] == "offline" and config["objective"]["name"] == "hamjepa"
    run_id = (run_dir / WANDB_ID_NAME).read_text().strip()
    assert run_id == run.run_id

    # --resume continues the same W&B run (a second offline folder with the same id) from the next step.
    _train(tmp_path, run_dir, resume=True, **{"train.max_steps": 3})
    folders = sorted((run_dir / "wandb").glob("offline-run-*"))
    # Both folders carry the run id (W&B appends "-1" when both runs start within the same second).
    assert len(folders) == 2 and all(re.search(rf"-{run_id}(-\d+)?$", p.name) for p in folders)
    history, _ = offline_history(run_dir)
    assert history[3]["train/loss"] == pytest.approx(_jsonl(run_dir, "train")[-1]["loss"], rel=1e-12, abs=0)


def test_missing_wandb_stops_the_trainer_and_the_cli_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hamjepa.engine.trainer import Trainer

    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    cfg = tiny_config("cifar100_hamjepa", tmp_path / "absent.npz", **{"train.wandb": "online"})
    with pytest.raises(WandbUnavailableError, match="pip install wandb"):
        Trainer(cfg, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    code = main(["train", str(REPO / "configs" / "cifar100_hamjepa.yaml"), "train.wandb=offline"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "pip install wandb" in err and "\n" not in err


def test_wandb_key_reads_yaml_off_and_rejects_typos(tmp_path: Path) -> None:
    config = REPO / "configs" / "cifar100_hamjepa.yaml"
    assert load_config(config).train.wandb == "off"
    assert load_config(config, ["train.wandb=off"]).train.wandb == "off"  # YAML 1.1 reads off as False
    assert load_config(config, ["train.wandb=offline"]).train.wandb == "offline"
    with pytest.raises(ConfigError, match="Did you mean 'online'"):
        load_config(config, ["train.wandb=onlin"])
    with pytest.raises(ConfigError, match="is not one of"):
        load_config(config, ["train.wandb=true"])  # 'on' is not a mode: say offline or online
    saved = tmp_path / "config.yaml"
    save_config(load_config(config), saved)
    assert load_config(saved).train.wandb == "off"


def test_only_rank_zero_opens_sinks(tmp_path: Path) -> None:
    cfg = tiny_config("cifar100_hamjepa", tmp_path / "absent.npz", **{"train.wandb": "offline"})
    logger = RunLogger(tmp_path / "run", is_main=False)
    logger.open(cfg)
    logger.log({"kind": "train", "step": 1, "loss": 1.0}, 1)
    logger.close()
    assert logger.sinks == [] and not (tmp_path / "run").exists()


def test_wandb_scalars_keep_numeric_fields_under_their_kind() -> None:
    row = {"kind": "monitor", "step": 7, "epoch": 2, "nn20": 0.25, "k": 20, "ok": True, "note": "x"}
    assert wandb_scalars(row) == {"monitor/nn20": 0.25, "monitor/k": 20.0, "epoch": 2.0}
    assert wandb_scalars({"step": 1, "loss": 2}) == {"train/loss": 2.0}
