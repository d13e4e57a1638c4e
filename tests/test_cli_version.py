"""`attribution --version` prints the installed distribution's version, as pyproject says."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_version_flag_prints_the_project_version_and_exits_0() -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([sys.executable, "-m", "cli.main", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, f"attribution {expected}\n"), done.stderr


def test_commands_still_run_beside_the_option() -> None:
    done = subprocess.run([sys.executable, "-m", "cli.main", "schema"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and '"properties"' in done.stdout, done.stderr
