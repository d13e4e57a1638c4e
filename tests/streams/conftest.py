"""Shared fixtures for the streaming tests: one embedded Tansu broker per session."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from streams.broker import EmbeddedBroker, patch_faust_for_tansu


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One in-memory Tansu broker for the whole test session."""
    patch_faust_for_tansu()
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A prefix for topics, groups and Faust app ids that no other test uses.

    The broker is shared by the session, so tests must never share names.
    """
    test_name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"{test_name}-{uuid.uuid4().hex[:8]}"
