"""``scripts/setup.sh`` (run by ``scripts/test.sh``) installs a Debian package only when asked (issue 22)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run_setup(tmp_path: Path, **env: str) -> str:
    """Run a copy of setup.sh whose pip is a stub (an existing .venv) and whose apt-get logs its calls."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    _stub(repo / ".venv" / "bin" / "python", "exit 0")
    log = tmp_path / "apt.log"
    _stub(tmp_path / "bin" / "apt-get", f'echo "$@" >> {log}')
    environ = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "FASHION_MNIST_DIR": str(tmp_path / "no-fashion-mnist"),
        **env,
    }
    done = subprocess.run(["bash", "scripts/setup.sh"], cwd=repo, env=environ, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return log.read_text() if log.exists() else ""


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_setup_installs_no_debian_package_without_the_opt_in(tmp_path: Path) -> None:
    assert _run_setup(tmp_path / "default") == ""
    assert "install" in _run_setup(tmp_path / "opted-in", HAMJEPA_INSTALL_DEBIAN_PACKAGES="1")


def test_test_script_does_not_opt_in_but_ci_does() -> None:
    commands = [line for line in (REPO / "scripts" / "test.sh").read_text().splitlines() if not line.startswith("#")]
    assert not any("HAMJEPA_INSTALL_DEBIAN_PACKAGES" in line for line in commands)
    assert "HAMJEPA_INSTALL_DEBIAN_PACKAGES=1 bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()
