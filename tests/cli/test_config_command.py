"""``hamjepa config CONFIG [overrides]``: the resolved config with each key's documentation (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hamjepa.cli import main
from hamjepa.components import load_config
from hamjepa.config.describe import class_docstrings
from hamjepa.config.schema import DataConfig, TrainConfig

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "cifar100_hamjepa.yaml"


def test_prints_the_resolved_config_with_every_keys_help(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["config", str(CONFIG), "data.subset=512", "train.epochs=3"]) == 0
    text = capsys.readouterr().out
    expected = load_config(CONFIG, ["data.subset=512", "train.epochs=3"])
    assert yaml.safe_load(text) == expected.to_dict()  # the output is the config itself, as YAML
    lines = text.splitlines()
    subset = lines.index("  subset: 512")
    doc = " ".join(class_docstrings(DataConfig)["subset"].split())
    comment = []
    for line in reversed(lines[:subset]):
        if not line.startswith("  # "):
            break
        comment.insert(0, line[4:])
    assert " ".join(comment) == doc.replace("``", "`")
    assert "  epochs: 3" in lines
    assert any(class_docstrings(TrainConfig)["epochs"].split()[0] in line for line in lines if line.startswith("  #"))
    # the printed file loads back as a config
    saved = tmp_path / "resolved.yaml"
    saved.write_text(text)
    assert load_config(saved).to_dict() == expected.to_dict()


def test_a_mistyped_key_or_missing_config_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", str(CONFIG), "data.subst=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Did you mean 'subset'" in err
    assert main(["config", "train.epochs=3"]) == 2
    assert "expected one CONFIG file" in capsys.readouterr().err
