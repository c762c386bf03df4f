"""The HTTP authenticator on the headers a client can send: never raises, only the right
credentials pass."""

from __future__ import annotations

import base64

import bcrypt
import pytest

from monitor.export.web_config import Authenticator


@pytest.fixture(scope="module")
def authenticator() -> Authenticator:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4))
    return Authenticator(users={"prom": hashed}, bearer_token=b"tok")


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (_basic(b"prom:s3cret"), True),
        (_basic(b"prom:s3cret"), True),  # again: from the cache
        ("basic " + base64.b64encode(b"prom:s3cret").decode(), True),  # scheme case-insensitive
        ("Bearer tok", True),
        (None, False),
        ("", False),
        (_basic(b"prom:S3cret"), False),
        (_basic(b"prom:" + b"x" * 100), False),  # bcrypt refuses > 72 bytes: no exception
        (_basic(b"\xff\xfe:s3cret"), False),
        (_basic(b"prom"), False),  # no colon
        ("Basic not-base64!", False),
        ("Bearer tok2", False),
        ("Bearer \u00e9", False),
        ("Digest abc", False),
    ],
)
def test_only_the_right_credentials_pass(
    authenticator: Authenticator, header: str | None, allowed: bool
) -> None:
    assert authenticator.allows(header) is allowed


def test_without_credentials_configured_everything_passes() -> None:
    assert Authenticator().allows(None)
    assert not Authenticator().enabled
