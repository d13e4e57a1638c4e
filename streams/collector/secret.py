"""The key that pseudonymises email addresses, and where it comes from.

A pseudonym must be stable: the same address must give the same hash after a restart and
on every collector replica, or one person silently splits into several identities. So the
commands resolve the key once, before serving, in this order:

1. ``[collector] email_secret``: the key itself (tests, throwaway setups);
2. ``[collector] email_secret_env = "NAME"``: the key is ``$NAME`` (production: keep it
   in the environment or a secret store, the same for every collector, for ever);
3. neither, on the embedded single-machine setup (``attribution run`` without a broker)
   with a local warehouse: a generated key kept in ``WAREHOUSE/_secrets/email-secret``
   (mode 0600), made once and reused by every later run on that warehouse;
4. otherwise the collector refuses to start and says what to set.

A warehouse that is not a local directory (``s3://...``) does not get a generated key:
each host would generate its own (so the same address would hash differently per host),
and a key stored beside the hashes in a shared bucket is readable by everyone who can
read the hashes, which defeats the pseudonymisation. It needs the configured key.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from attribution.policy import ConfigError
from streams.collector.settings import MIN_SECRET_CHARS, CollectorSettings

SECRET_DIR = "_secrets"
SECRET_FILE = "email-secret"
SUGGESTED_ENV = "ATTRIBUTION_EMAIL_SECRET"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # s3://..., gs://... (not a drive letter)


def is_local(location: str | Path) -> bool:
    """True for a directory path; False for a URL such as ``s3://bucket/prefix``."""
    return _URL.match(str(location)) is None


def secret_path(warehouse: Path) -> Path:
    return warehouse / SECRET_DIR / SECRET_FILE


def persisted_secret(warehouse: Path) -> str:
    """The warehouse's generated key: read it, or create it once (atomically, so two
    processes starting together end up with the same key)."""
    path = secret_path(warehouse)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(8)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)  # fails if another process got there first: keep theirs
        except FileExistsError:
            pass
        finally:
            temp.unlink()
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the name survives a crash too
        finally:
            os.close(directory)
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError(f"the email secret in {path} is damaged (shorter than "
                          f"{MIN_SECRET_CHARS} characters); restore it from a backup: a new "
                          "one would give every email address a new pseudonym")
    return value


def missing_secret_message(reason: str) -> str:
    return (f"no email secret configured ({reason}). Set [collector] email_secret_env = "
            f"\"{SUGGESTED_ENV}\" and export a random value of at least {MIN_SECRET_CHARS} "
            "characters (e.g. `openssl rand -hex 32`), the same for every collector and for "
            "ever, or set [collector] hash_emails = false. Without one, the pseudonym of an "
            "email address would change at every restart and differ between collectors, "
            "splitting people into several identities")


def resolve_email_secret(settings: CollectorSettings, *, embedded_broker: bool,
                         warehouse: str | Path | None) -> CollectorSettings:
    """``settings`` with ``email_secret`` set from where the module docstring says, or a
    ConfigError saying what to configure."""
    if not settings.hash_emails or settings.email_secret is not None:
        return settings
    if settings.email_secret_env is not None:
        name = settings.email_secret_env
        value = os.environ.get(name, "").strip()
        if len(value) < MIN_SECRET_CHARS:
            state = "is not set" if not value else f"is shorter than {MIN_SECRET_CHARS} characters"
            raise ConfigError(f"[collector] email_secret_env names ${name}, which {state}; "
                              f"export a random value of at least {MIN_SECRET_CHARS} characters "
                              "(the same for every collector, for ever)")
        return settings.model_copy(update={"email_secret": value})
    if not embedded_broker:
        raise ConfigError(missing_secret_message("required with an external Kafka broker"))
    if warehouse is None or not is_local(warehouse):
        raise ConfigError(missing_secret_message(
            f"the warehouse {warehouse} is not a local directory that could keep a generated "
            "one for every host"))
    return settings.model_copy(update={"email_secret": persisted_secret(Path(warehouse))})
