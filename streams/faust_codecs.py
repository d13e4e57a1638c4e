"""Faust codecs for table keys and values: UTF-8 keys, orjson-encoded stage states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faust.serializers import codecs

from streams import codec

KEY = "attribution-key"
DEVICE = "attribution-device"
JOURNEY = "attribution-journey"
LINK = "attribution-link"


class _Utf8(codecs.Codec):
    def _dumps(self, s: Any) -> bytes:
        return s.encode() if isinstance(s, str) else bytes(s)

    def _loads(self, s: bytes) -> Any:
        return s.decode()


class _Json(codecs.Codec):
    def __init__(self, to_json: Callable[[Any], Any], from_json: Callable[[Any], Any]) -> None:
        super().__init__()
        self._to, self._from = to_json, from_json

    def _dumps(self, s: Any) -> bytes:
        return codec.dumps(self._to(s))

    def _loads(self, s: bytes) -> Any:
        return self._from(codec.loads(s))


def value_type(codec_name: str) -> type:
    """A stand-in "model" naming our codec: Faust picks a table's changelog serializer
    from its value type's ``_options.serializer`` and hands it the decoded value."""

    class Options:
        serializer = codec_name

    class Decoded:
        _options = Options

        @classmethod
        def from_data(cls, data: Any, preferred_type: Any = None) -> Any:
            return data

    Decoded.__name__ = f"Decoded[{codec_name}]"
    return Decoded


def register() -> None:
    """Register once per process (idempotent)."""
    codecs.register(KEY, _Utf8())
    codecs.register(DEVICE, _Json(codec.device_to, codec.device_from))
    codecs.register(JOURNEY, _Json(codec.journey_to, codec.journey_from))
    codecs.register(LINK, _Json(codec.link_to, codec.link_from))
