"""Results files record no machine: commands and paths are written with placeholders anyone can rerun."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hamjepa.provenance import REPO_ROOT, portable, write_result

MACHINE_PATH = re.compile(r"(?<![\w.~:/])/(tmp|work|root|home|Users)/")


def test_paths_become_placeholders_and_repo_paths_become_relative() -> None:
    command = (
        f"hamjepa bench {REPO_ROOT}/configs/cifar100_hamjepa.yaml data.path=/tmp/cap/cifar100.npz "
        "--out /tmp/cap/bench/x.json --profile"
    )
    assert portable(command) == (
        "hamjepa bench configs/cifar100_hamjepa.yaml data.path=DATA/cifar100.npz --out OUT/x.json --profile"
    )
    assert portable("/elsewhere/checkout/configs/cifar100_sigreg.yaml") == "configs/cifar100_sigreg.yaml"
    assert portable("/elsewhere/configs/not_shipped.yaml") == "DATA/not_shipped.yaml"
    assert portable("https://example.org/a/b and runs/x and 3/4") == "https://example.org/a/b and runs/x and 3/4"
    nested = {"a": ["/data/imagenette-mini", 3, None], "b": {"c": "--out=/scratch/run"}}
    assert portable(nested) == {"a": ["DATA/imagenette-mini", 3, None], "b": {"c": "--out=OUT/run"}}


def test_write_result_writes_portable_json(tmp_path: Path) -> None:
    out = write_result(tmp_path / "r.json", {"command": "hamjepa theory --out /tmp/t", "value": 1.5})
    assert json.loads(out.read_text()) == {"command": "hamjepa theory --out OUT/t", "value": 1.5}


def test_committed_results_and_the_results_page_carry_no_machine_paths() -> None:
    files = [*sorted((REPO_ROOT / "benchmarks" / "results").rglob("*.json")), REPO_ROOT / "docs" / "RESULTS.md"]
    assert len(files) > 3
    for file in files:
        text = file.read_text()
        assert not MACHINE_PATH.search(text), f"{file.relative_to(REPO_ROOT)} records a machine path"
