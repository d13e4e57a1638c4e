"""Keep personal data out of Kafka: truncate client IPs, pseudonymise email addresses.

Both run on the wire JSON before validation, so nothing downstream (topics, warehouse)
ever holds a full IP or a clear-text email. An address becomes HMAC-SHA-256 under the
deployment's email secret (streams.collector.secret): stable, so identity joins hold, and
not reversible by hashing a list of known addresses without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from functools import lru_cache
from typing import Any

# Deliberately simple: one "@" between a local part and a dotted domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(?:\.[^@\s.]+)+$")
_ID_FIELDS = ("userId", "anonymousId", "previousId")
_MAX_IP_CHARS = 64  # an IPv6 address with zone and brackets fits; longer is not an IP


def truncate_ip(value: str) -> str | None:
    """IPv4 to its /24 ("203.0.113.7" -> "203.0.113.0"), IPv6 to its /48; None if not an IP."""
    if len(value) > _MAX_IP_CHARS:  # also keeps the cache below small
        return None
    return _truncate_ip(value)


@lru_cache(maxsize=4096)  # a batch repeats one address; parsing it is the costly part
def _truncate_ip(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)


def looks_like_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 320 and _EMAIL.match(value.strip()) is not None


def hash_email(value: str, secret: str) -> str:
    """HMAC-SHA-256 hex of the trimmed, lower-cased address under ``secret`` (same address
    and secret, same pseudonym)."""
    normalised = value.strip().lower().encode("utf-8")
    return hmac.new(secret.encode("utf-8"), normalised, hashlib.sha256).hexdigest()


def _hash_emails_in(value: Any, secret: str, key: str | None = None) -> Any:
    # Recursive: the collector bounds an event's nesting (streams.collector.bounds) first.
    if isinstance(value, dict):
        return {k: _hash_emails_in(v, secret, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_hash_emails_in(v, secret, key) for v in value]
    if isinstance(value, str) and (looks_like_email(value) or (key == "email" and "@" in value)):
        return hash_email(value, secret)
    return value


def scrub_event(event: dict[str, Any], client_ip: str | None, secret: str | None
                ) -> dict[str, Any]:
    """Return the event with ``context.ip`` truncated and, given a ``secret``, emails hashed.

    ``context.ip`` defaults to the request's address, as Segment does. Emails are hashed in
    ``traits``, ``context.traits`` and ``properties``, and in ids that are email addresses
    (a common mistake: ``userId = email``); the hash is deterministic, so identity joins hold.
    """
    out = dict(event)
    context = dict(out["context"]) if isinstance(out.get("context"), dict) else {}
    raw_ip = context.get("ip") if isinstance(context.get("ip"), str) else client_ip
    truncated = truncate_ip(raw_ip) if raw_ip else None
    if truncated is None:
        context.pop("ip", None)
    else:
        context["ip"] = truncated
    if secret is not None:
        if isinstance(context.get("traits"), dict):
            context["traits"] = _hash_emails_in(context["traits"], secret)
        for field in ("traits", "properties"):
            if isinstance(out.get(field), dict):
                out[field] = _hash_emails_in(out[field], secret)
        for field in _ID_FIELDS:
            if looks_like_email(out.get(field)):
                out[field] = hash_email(out[field], secret)
    out["context"] = context
    return out
