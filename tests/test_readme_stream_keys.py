"""Every `[stream]` setting is documented in the README's key list."""

from __future__ import annotations

from pathlib import Path

from streams.settings import StreamSettings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_stream_key_is_in_the_readme_key_list() -> None:
    text = README.read_text()
    start = text.index("`[stream]` keys (`streams/settings.py`)")
    key_list = text[start:text.index("\n\n", start)]
    missing = [key for key in StreamSettings.model_fields if f"`{key}`" not in key_list]
    assert missing == []
