"""Unsubscribe links: signed with the service's secret so only the recipient's link works."""

from __future__ import annotations

import hashlib
import hmac


def unsubscribe_token(secret: str, person_id: str) -> str:
    return hmac.new(secret.encode(), f"unsubscribe:{person_id}".encode(), hashlib.sha256).hexdigest()[:32]


def token_is_valid(secret: str, person_id: str, token: str) -> bool:
    return hmac.compare_digest(unsubscribe_token(secret, person_id), token)


def unsubscribe_url(base_url: str, secret: str, person_id: str) -> str:
    return f"{base_url.rstrip('/')}/unsubscribe/{person_id}?token={unsubscribe_token(secret, person_id)}"
