"""Test support: the real stream stages run in-process over lists (``harness``)."""
