"""Shared bits of the benchmarks: scales, machine facts, timing and the BENCHMARKS.md writer.

Each benchmark owns one section of BENCHMARKS.md between two HTML comment markers and
rewrites only that section, so several scripts (and teammates' sections) share the file.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import resource
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
WORK = Path(os.environ.get("BENCH_WORK", "/tmp/attribution-bench"))
HEADER = ("# Benchmarks\n\nWritten by `python -m bench` (and the collector bench); each "
          "section is rewritten in place by its own script.\n")


@dataclass(frozen=True)
class Scale:
    """How much traffic each benchmark generates; bounded so every run ends."""

    name: str
    stream_visitors: int  # about 9 events each
    stream_accounts: int
    replay_visitors: int
    replay_accounts: int
    state_visitors: int  # in-process state-size measurement
    timeout: float  # seconds any one stream phase may take


SCALES = {
    "small": Scale("small", 2_000, 20, 5_000, 50, 5_000, 120.0),
    "medium": Scale("medium", 20_000, 200, 100_000, 1_000, 50_000, 600.0),
    "large": Scale("large", 110_000, 1_000, 1_100_000, 10_000, 200_000, 1800.0),
}


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count() or 0, "memory_gb": round(_mem_total_kb() / 1024 / 1024, 1),
            "python": platform.python_version(), "cpu": _cpu_model(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def _mem_total_kb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rss_mb() -> float:
    """Current resident set size of this process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process and its children (a worker's landing
    process; exited children as the kernel accounted them): throughput per CPU-second
    stays comparable when other work shares the cores (wall-clock rates do not)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:  # exited meanwhile
            continue
        total += sum(int(field) for field in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def process_rss_mb(pid: int) -> float:
    """VmRSS of another live process (a worker) and its live children, from /proc."""
    total = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except FileNotFoundError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith("VmRSS:")), 0)
    if not total:
        raise ValueError(f"no VmRSS for pid {pid}")
    return total / 1024


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    found, todo = [], [pid]
    while todo:
        member = todo.pop()
        found.append(member)
        for task in Path(f"/proc/{member}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except FileNotFoundError:
                continue
    return found


def load_line() -> str:
    """The 1/5/15-minute load average: other work on the cores skews wall-clock numbers."""
    one, five, fifteen = os.getloadavg()
    return f"Load average (1/5/15 min): {one:.2f} / {five:.2f} / {fifteen:.2f}."


def ops_url(warehouse: Path, pid: int) -> str | None:
    """A worker's /metrics /readyz base URL, once it has announced it (streams.health)."""
    from streams.health import OPS_DIR

    try:
        announced = json.loads((warehouse / OPS_DIR / f"{socket.gethostname()}-{pid}.json")
                               .read_text())
    except (OSError, ValueError):
        return None
    return str(announced["url"])


def worker_ready(url: str | None) -> bool:
    """The worker's /readyz answers 200: partitions assigned, every table recovered."""
    if url is None:
        return False
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def machine_line(info: dict[str, Any], scale: str) -> str:
    return (f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gb']} GB RAM, "
            f"Python {info['python']}. Date: {info['date']}. Scale: `{scale}`.")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def replace_section(text: str, name: str, heading: str, body: str) -> str:
    """The document with section `name` replaced (or appended), other text untouched.

    The "## heading" line stays outside the markers: the collector bench replaces its own
    "## Collector" section up to the next "## " line, so our markers must follow a heading.
    """
    start, end = markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    head, found, rest = text.partition(start)
    if found:
        _, closed, tail = rest.partition(end)
        if closed:
            return head + block + tail
        return head + block + "\n" + rest  # unterminated: keep what followed the start marker
    return text.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with (path.parent / f".{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_section(name: str, heading: str, body: str, path: Path = BENCHMARKS) -> None:
    """Rewrite this benchmark's section of BENCHMARKS.md (creating the file if missing);
    locked and replaced atomically so concurrent writers of other sections keep theirs."""
    with _locked(path):
        text = path.read_text() if path.exists() else HEADER
        updated = replace_section(text, name, heading, body)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(updated)
        temporary.replace(path)


def say(text: str) -> None:
    print(text, flush=True)
    sys.stdout.flush()
