"""BENCHMARKS.md sections: each benchmark rewrites only its own."""

from __future__ import annotations

from pathlib import Path

from bench.common import replace_section, write_section


def test_section_is_appended_then_replaced_in_place() -> None:
    text = "# Benchmarks\n\n## Collector\n\nteammate's numbers\n"
    once = replace_section(text, "stream", "Stream", "first")
    assert once.startswith(text.rstrip("\n"))
    assert "## Stream\n\n<!-- bench:stream:start -->\nfirst\n<!-- bench:stream:end -->" in once
    twice = replace_section(once + "\n## Other\n\nkept\n", "stream", "Stream", "second")
    assert "first" not in twice and "second" in twice
    assert "teammate's numbers" in twice and "## Other\n\nkept" in twice
    assert twice.count("## Stream") == 1


def test_two_sections_do_not_clobber_each_other(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    write_section("replay", "Replay", "r1", path)
    write_section("stream", "Stream", "s1", path)
    write_section("replay", "Replay", "r2", path)
    text = path.read_text()
    assert "r2" in text and "s1" in text and "r1" not in text
    assert text.index("## Replay") < text.index("## Stream")
