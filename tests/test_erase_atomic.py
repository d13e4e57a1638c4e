"""Erasure is all or nothing: a file that cannot be read stops it before anything changes
(and the message names the file), and a crash at any step is completed by the next run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_batch import B2C_JOURNEY
from tests.test_erase import B2B, OTHER, PERSON, REJECTED, all_rows, build, mentions
from warehouse.erase import STAGING, Audit, Subject, erase_warehouse, subject_ids
from warehouse.layout import TABLES, landed
from warehouse.query import run_query


class Crash(BaseException):
    """A fault injected at one step; BaseException, so no `except Exception` cleans up after
    it: what is left is what a killed process leaves."""


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file readers can see, by key."""
    return {info.key: (root / info.key).read_bytes() for table in TABLES
            for info in landed(root, table)}


def erase(root: Path, on_step: Callable[[str], None] | None = None,
          erasure_id: str = "e1") -> None:
    ids = subject_ids(root, Subject.USER_ID, "u-1")
    erase_warehouse(root, ids, Audit(erasure_id, Subject.USER_ID, len(ids), False), on_step)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "warehouse"
    build(root, B2C_JOURNEY + REJECTED + OTHER, B2B)  # files mixing the person and others
    return root


@pytest.fixture(scope="module")
def reference(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The rows an uninterrupted erasure leaves (the audit table aside)."""
    root = tmp_path_factory.mktemp("reference") / "warehouse"
    shutil.copytree(pristine, root)
    erase(root)
    rows = all_rows(root)
    assert not [r for table in rows.values() for r in table if mentions(r, PERSON)]
    return rows


@pytest.fixture(scope="module")
def steps(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("steps") / "warehouse"
    shutil.copytree(pristine, root)
    seen: list[str] = []
    erase(root, seen.append)
    return seen


def test_the_steps_cover_plan_stage_commit_swap_and_audit(steps: list[str]) -> None:
    kinds = [step.split(" ", 1)[0] for step in steps]
    assert kinds.index("commit") > max(i for i, k in enumerate(kinds) if k in ("plan", "stage"))
    assert {"plan", "stage", "commit", "swap", "audit", "clean"} <= set(kinds)
    assert kinds.count("swap") >= 5  # files of several tables are rewritten or removed


def test_a_crash_at_any_step_is_completed_by_the_next_run(
        pristine: Path, reference: dict[str, list[str]], steps: list[str],
        tmp_path: Path) -> None:
    committed_at = steps.index("commit")
    for index, step in enumerate(steps):
        root = tmp_path / f"crash-{index}"
        shutil.copytree(pristine, root)
        before = snapshot(root)

        def crash_here(name: str, at: str = step) -> None:
            if name == at:
                raise Crash(name)

        with pytest.raises(Crash):
            erase(root, crash_here)
        if index <= committed_at:  # before the commit: nothing a reader sees has changed
            assert snapshot(root) == before, step
        erase(root, erasure_id="e2")  # the re-run (a new erasure of the same person)
        assert all_rows(root) == reference, step
        assert not (root / STAGING).exists() or not any((root / STAGING).iterdir()), step
        audits = dict(run_query(root, "SELECT erasure_id, rows_removed FROM erasures")[1])
        if index > committed_at:  # the crashed erasure was finished, its audit row landed
            assert set(audits) == {"e1", "e2"} and json.loads(audits["e2"]) == {}, step
        else:
            assert set(audits) == {"e2"}, step
        shutil.rmtree(root)


def test_a_killed_process_is_completed_by_the_next_run(
        pristine: Path, reference: dict[str, list[str]], steps: list[str],
        tmp_path: Path) -> None:
    """A real kill (os._exit: no cleanup, no finally) mid-plan and mid-swap."""
    swaps = [s for s in steps if s.startswith("swap ")]
    plans = [s for s in steps if s.startswith("plan ")]
    for step in (plans[len(plans) // 2], swaps[len(swaps) // 2]):
        root = tmp_path / "killed"
        shutil.copytree(pristine, root)
        before = snapshot(root)
        code = (
            "import os, sys\n"
            "from pathlib import Path\n"
            "from tests.test_erase_atomic import erase\n"
            "def kill(name):\n"
            "    if name == sys.argv[2]:\n"
            "        os._exit(9)\n"
            "erase(Path(sys.argv[1]), kill)\n"
        )
        done = subprocess.run([sys.executable, "-c", code, str(root), step],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 9, done.stderr
        if step.startswith("plan "):
            assert snapshot(root) == before
        else:
            assert snapshot(root) != before  # half swapped: the next run must finish it
        erase(root, erasure_id="e2")
        assert all_rows(root) == reference, step
        shutil.rmtree(root)


def test_an_unreadable_file_stops_the_erasure_before_anything_changes(
        pristine: Path, tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    shutil.copytree(pristine, root)
    # A file of a table planned late (credits come after touches and conversions, which
    # hold the person's rows): the old erasure had rewritten those before reaching it.
    victim = landed(root, "identity_map")[-1].key
    (root / victim).write_bytes(b"PAR1 this is not Parquet")
    before = snapshot(root)
    done = subprocess.run([sys.executable, "-m", "cli.main", "erase", "--user-id", "u-1",
                           "--warehouse", str(root)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1
    assert str(root.resolve() / victim) in done.stderr
    assert "nothing was changed" in done.stderr
    assert snapshot(root) == before
    assert not [p for p in root.rglob("*") if STAGING in p.parts and p.is_file()]
    # once the file is dealt with, the erasure goes through
    (root / victim).unlink()
    erase(root)
    assert not [r for rows in all_rows(root).values() for r in rows if mentions(r, PERSON)]
