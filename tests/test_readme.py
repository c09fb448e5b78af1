"""The README's Python example runs as written, and its quick-start scripts exist."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    out = namespace["out"]
    assert out.loss.ndim == 0 and "pred" in out.terms


def test_quick_start_commands_point_at_existing_scripts() -> None:
    text = README.read_text()
    root = README.parent
    for script in re.findall(r"bash (scripts/\w+\.sh)", text):
        assert (root / script).is_file(), script
    assert "bash scripts/test.sh" in text and "bash scripts/quickstart.sh" in text
    assert "scripts/test.sh" in (root / ".ci" / "run").read_text()


def test_readme_dynamics_numbers_match_the_committed_results_file() -> None:
    import json

    results = sorted((README.parent / "benchmarks" / "results").glob("dynamics_*.json"))
    assert results, "no committed dynamics results"
    summary = json.loads(results[-1].read_text())["summary"]
    text = README.read_text()
    for task, label in (("sine", "sine"), ("lorenz", "Lorenz")):
        row = next(line for line in text.splitlines() if line.startswith(f"  | {label} |"))
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        for method, cell in zip(("jepa", "bijepa", "hamjepa"), cells[1:4], strict=True):
            stats = summary[task][method]["pred_probe_train"]
            assert cell == f"{stats['mean']:.4f} ± {stats['std']:.4f}", (task, method, cell)


def test_readme_states_the_licence_of_every_loss() -> None:
    text = README.read_text()
    section = text.split("## Licence", 1)[1].split("\n## ", 1)[0]
    assert "MIT" in section and "independent" in section and "CC BY-NC" in section
    for method in ("HamJEPA", "SIGReg", "HamSIGReg", "MLP-HJEPA", "BiJEPA"):
        assert method in section, method
    pyproject = (README.parent / "pyproject.toml").read_text()
    assert 'license = "MIT"' in pyproject and (README.parent / "LICENSE").read_text().startswith("MIT")


def test_readme_sliced_rollout_numbers_match_the_committed_results_file() -> None:
    import json

    results = sorted((README.parent / "benchmarks" / "results").glob("diagnose_toy_*.json"))
    assert results, "no committed toy-diagnostics results"
    data = json.loads(results[-1].read_text())
    text = " ".join(README.read_text().split())
    assert results[-1].name in text, "the README must cite the results file its numbers come from"
    pendulum = data["systems"]["pendulum"]["integrators"]
    harmonic = data["systems"]["harmonic"]["integrators"]

    def sliced(rows: dict, name: str) -> dict:
        return rows[name]["sliced"]

    quoted = {
        f"{sliced(pendulum, 'explicit_euler')['log_var_ratio_final']['median_abs']:.3f} for Euler",
        f"against {sliced(pendulum, 'leapfrog')['log_var_ratio_final']['median_abs']:.3f} for leapfrog",
        f"sliced W1 {sliced(pendulum, 'explicit_euler')['sliced_w1_rel_final']:.3f} "
        f"vs {sliced(pendulum, 'leapfrog')['sliced_w1_rel_final']:.3f}",
        f"Euler's is {sliced(harmonic, 'explicit_euler')['log_var_ratio_final']['median_abs']:.3f}",
        f"(spread {sliced(harmonic, 'explicit_euler')['log_var_ratio_final']['spread']:.3f})",
        f"against {sliced(harmonic, 'leapfrog')['log_var_ratio_final']['median_abs']:.3f} for leapfrog",
    }
    for phrase in quoted:
        assert phrase in text, phrase


def test_readme_cpu_demo_numbers_match_the_committed_results_file() -> None:
    """The CPU demo's kNN@20 quoted in the README are those of the newest committed ``cpu_demo`` result."""
    import json

    results = sorted((README.parent / "benchmarks" / "results").glob("cpu_demo_*.json"))
    assert results, "no committed CPU demo result"
    data = json.loads(results[-1].read_text())
    scores = {row["run"]: row["scores"] for row in data["rows"]}
    text = " ".join(README.read_text().split())
    assert f"`{data['provenance']['commit']}`" in text and results[-1].name in text
    for run, readout in (("hamjepa", "qp"), ("sigreg", "z"), ("random_init", "qp")):
        assert f"{scores[run][readout]['knn@20']:.2f} %" in text, (run, readout)
    for run in ("hamjepa", "sigreg", "random_init"):
        assert f"{scores[run]['pooled (standard)']['knn@20']:.2f} %" in text, run
    assert f"{sum(data['timings_s'].values()) / 60:.1f} minutes" in text
