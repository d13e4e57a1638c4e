"""Warehouse view definitions: one ``<view name>.sql`` file per view, shipped as package data.

Each file holds only the view's SELECT (no ``CREATE VIEW``, no trailing ``;``) with these
placeholders, expanded by ``warehouse.views.render_view_sql``:

- ``{table:NAME}`` -> ``read_parquet(<files>, <hive options>)``: the table's rows plus its
  date partition column (``warehouse.layout.PARTITIONS``)
- ``{files:NAME}`` -> the glob of the table's files under the reader's ``warehouse_root``
  variable (no path is stored in a view: see ``warehouse.views``), for read_parquet calls
  that need more options
- ``{hive:NAME}`` -> the read_parquet options that read the date partition column

A view may select from another view; ``create_views`` resolves the creation order.
"""

from __future__ import annotations

from importlib.resources import files


def view_names() -> list[str]:
    """Names of all shipped views, sorted."""
    return sorted(
        entry.name.removesuffix(".sql")
        for entry in files(__name__).iterdir()
        if entry.name.endswith(".sql")
    )


def view_sql(name: str) -> str:
    """The unexpanded SELECT of view ``name``."""
    return files(__name__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
