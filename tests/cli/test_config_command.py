"""``hamjepa config CONFIG [overrides]``: the resolved config with each key's documentation (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hamjepa.cli import main
from hamjepa.components import CATALOG, load_config
from hamjepa.config.describe import args_section, argument_docstrings, class_docstrings
from hamjepa.config.schema import DataConfig, TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CONFIG = CONFIGS / "cifar100_hamjepa.yaml"


def _comment_above(lines: list[str], line: str) -> str:
    """The comment lines right above ``line``, joined (the key's documentation as printed)."""
    at = lines.index(line)
    comment: list[str] = []
    for previous in reversed(lines[:at]):
        if not previous.lstrip().startswith("# "):
            break
        comment.insert(0, previous.lstrip()[2:])
    return " ".join(comment)


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


@pytest.mark.parametrize(
    ("config", "section", "key", "cls"),
    [
        ("cifar100_hamjepa.yaml", "objective", "p_weight", CATALOG.objective_class("hamjepa")),
        ("cifar100_hamjepa.yaml", "model", "token_dim", CATALOG.encoder_class("resnet18_tokens")),
        ("cifar100_vicreg.yaml", "objective", "expander_widths", CATALOG.objective_class("vicreg")),
    ],
)
def test_objective_and_encoder_keys_carry_their_classes_args_entry(
    capsys: pytest.CaptureFixture[str], config: str, section: str, key: str, cls: type
) -> None:
    assert main(["config", str(CONFIGS / config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    resolved = load_config(CONFIGS / config).to_dict()[section][key]
    line = f"  {key}: {yaml.safe_dump(resolved, default_flow_style=True).strip().removesuffix('...').strip()}"
    doc = " ".join(argument_docstrings(cls)[key].split()).replace("``", "`")
    assert doc and _comment_above(lines, line) == doc


def test_args_section_reads_google_style_entries() -> None:
    doc = """Summary.

    Args (keyword-only):
        alpha: first line
            continued.
        beta, gamma (int): shared text.
        delta:
            text on the next line.

    Returns:
        nothing: not an argument.
    """
    assert args_section(doc) == {
        "alpha": "first line continued.",
        "beta": "shared text.",
        "gamma": "shared text.",
        "delta": "text on the next line.",
    }
    assert args_section(None) == {} and args_section("Args: z inline, not a section.") == {}
