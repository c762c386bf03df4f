"""Secrets out of URLs and error text, before they reach a label, a log line or output.

A URL keeps its scheme, host, port and path; its userinfo (``user:password@``) and every
query value become ``***``, and its fragment is dropped. Credentials in a URL's path
(some webhook services put a token there) cannot be told apart from a path: give those
through a secret, not in the URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

MASK = "***"
MIN_SECRET_LENGTH = 4
#: Something that looks like an absolute URL inside free text (an httpx error message).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """The URL without its userinfo, query values or fragment.

    >>> redact_url("https://admin:hunter2@am.example.com:9093/api/v2/alerts?token=abc&x")
    'https://***@am.example.com:9093/api/v2/alerts?token=***&x=***'
    >>> redact_url("http://127.0.0.1:9093")
    'http://127.0.0.1:9093'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not a URL we can take apart (a bad port, a bad IPv6 literal)
        return MASK
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if "@" in parts.netloc:
        netloc = f"{MASK}@{netloc}"
    query = "&".join(f"{name}={MASK}" for name, _ in parse_qsl(parts.query, True))
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, ""))


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that may be secret (its password, its query values), to mask
    also where the text quotes them without the rest of the URL.

    >>> url_secrets("https://u:hunter2@h/x?token=abcd&n=1")
    ['hunter2', 'abcd']
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return [url]
    values = [value for _, value in parse_qsl(parts.query, True)]
    # Shorter ones are no secret worth the name, and masking them would mangle the text
    # ("1" in "HTTP 401"); the URL itself is still redacted wherever the text quotes it.
    return [s for s in [password, *values] if s and len(s) >= MIN_SECRET_LENGTH]


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL in it redacted and each of ``secrets`` masked.

    >>> redact_text("ConnectError for url 'http://u:pw@h/x': refused", ["pw"])
    "ConnectError for url 'http://***@h/x': refused"
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
