"""Suite-wide settings: hypothesis profiles (CI runs more examples, never deadlines)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile(
    "ci", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

pytest_plugins = ["tests.s3server"]  # the s3_server / s3_root fixtures (moto on 127.0.0.1)
