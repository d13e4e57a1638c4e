"""Print the project's runtime dependencies (plus the RocksDB extra), one per line, from
pyproject.toml alone: the Dockerfile installs them before it copies the source, so a code
change reuses the cached layer instead of reinstalling numpy, polars, duckdb and faust."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: tuple[str, ...] = ("rocksdb",)) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(dep for extra in extras for dep in optional[extra])]


if __name__ == "__main__":
    print("\n".join(requirements(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
