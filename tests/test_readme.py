"""The README stays true to the code: every analyst view's columns are documented there,
and every command it lists exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.main import get_command

from cli.main import app
from warehouse.query import connect_readonly
from warehouse.views import create_views

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# raw_<table> views are every landed row of <table>, documented once as `raw_<table>`
VIEWS = sorted(path.stem for path in (ROOT / "sql").glob("*.sql")
               if not path.stem.startswith("raw_"))


def _documentation(view: str) -> str:
    """The README's text about a view: its `### `view`` section, else its table row."""
    heading = f"### `{view}`\n"
    if heading in README:
        start = README.index(heading) + len(heading)
        following = re.search(r"^##", README[start:], flags=re.MULTILINE)
        return README[start: start + following.start()] if following else README[start:]
    row = re.search(rf"^\| `{view}` \|.*$", README, flags=re.MULTILINE)
    assert row, f"README documents view {view} neither in a section nor in a table row"
    same = re.search(r"\| as `(\w+)` \|$", row.group(0))  # "columns: as `credits`"
    return _documentation(same.group(1)) if same else row.group(0)


@pytest.fixture(scope="module")
def view_columns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    root = tmp_path_factory.mktemp("warehouse")
    create_views(root)
    connection = connect_readonly(root)  # the views read the warehouse_root it sets
    try:
        return {view: [row[0] for row in connection.execute(f'DESCRIBE "{view}"').fetchall()]
                for view in VIEWS}
    finally:
        connection.close()


@pytest.mark.parametrize("view", VIEWS)
def test_readme_documents_every_column_of(view: str, view_columns: dict[str, list[str]]) -> None:
    text = _documentation(view)
    missing = [c for c in view_columns[view] if f"`{c}`" not in text]
    assert not missing, f"README does not document {missing} of view {view}"


def test_commands_in_the_readme_exist() -> None:
    listed = set(re.findall(r"^\| `attribution (\w+)", README, flags=re.MULTILINE))
    group = get_command(app)
    known = set(group.commands)  # type: ignore[attr-defined]
    assert listed, "the README lists no commands"
    assert listed <= known, f"README lists unknown commands {listed - known}"
