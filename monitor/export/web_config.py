"""Optional TLS and authentication of the HTTP server, configured like Prometheus exporters.

``http.web_config_file`` names a YAML file in the format of the Prometheus
exporter-toolkit's web config (the one node_exporter's ``--web.config.file`` reads), so
an operator can reuse theirs::

    tls_server_config:
      cert_file: /etc/calmon/web/tls.crt
      key_file: /etc/calmon/web/tls.key
      client_auth_type: RequireAndVerifyClientCert   # optional: mutual TLS
      client_ca_file: /etc/calmon/web/ca.crt
      min_version: TLS12
    basic_auth_users:
      prometheus: $2b$12$...   # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':\\n')

A bearer token, which that format has no key for, comes from the environment variable
that ``http.bearer_token_env`` names. With any credential configured, every path but the
probes needs one; the probes answer without (a kubelet sends none).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.core.errors import UserError

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


@functools.cache
def _dummy_hash() -> bytes:
    """A hash to check a password against when the user is unknown: the same work either
    way, so the time taken does not tell which users exist (as exporter-toolkit does)."""
    return bcrypt.hashpw(b"calmon", bcrypt.gensalt(rounds=12))


class WebConfigError(UserError, ValueError):
    """The web config file is missing or invalid; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerConfig(_Strict):
    cert_file: str
    key_file: str
    client_auth_type: Literal[
        "NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"
    ] = "NoClientCert"
    client_ca_file: str | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"


class WebConfigFile(_Strict):
    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")) or len(hashed) != 60:
                raise ValueError(
                    f"user {user!r}: not a bcrypt hash (they start $2b$, 60 characters)"
                )
        return users


@dataclass
class Authenticator:
    """Checks an ``Authorization`` header: basic (bcrypt) or bearer."""

    users: Mapping[str, bytes] = field(default_factory=dict)
    bearer_token: bytes | None = None
    #: sha256(user, password) of credentials that verified: bcrypt costs ~0.1-0.3 s, and
    #: Prometheus sends the same credentials on every scrape.
    _verified: set[bytes] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def enabled(self) -> bool:
        return bool(self.users) or self.bearer_token is not None

    def challenge(self) -> str:
        schemes = (['Basic realm="calmon"'] if self.users else []) + (
            ["Bearer"] if self.bearer_token is not None else []
        )
        return ", ".join(schemes)

    def allows(self, authorization: str | None) -> bool:
        if not self.enabled:
            return True
        if authorization is None:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.bearer_token is not None:
            return hmac.compare_digest(credentials.strip().encode(), self.bearer_token)
        if scheme == "basic" and self.users:
            return self._basic(credentials.strip())
        return False

    def _basic(self, credentials: str) -> bool:
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return False
        user_bytes, colon, password = decoded.partition(b":")
        if not colon:
            return False
        user = user_bytes.decode("utf-8", "replace")
        key = hashlib.sha256(user_bytes + b"\0" + password).digest()
        with self._lock:
            if key in self._verified:
                return True
        hashed = self.users.get(user)
        try:
            ok = bcrypt.checkpw(password, hashed or _dummy_hash()) and hashed is not None
        except ValueError:  # bcrypt refuses passwords over 72 bytes
            return False
        if ok:
            with self._lock:
                if len(self._verified) < 1000:
                    self._verified.add(key)
        return ok


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None
    authenticator: Authenticator

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"


def load(path: str | None, *, bearer_token_env: str | None = None) -> WebConfig:
    """The TLS context and authenticator of ``http.web_config_file`` and the bearer token."""
    parsed = WebConfigFile() if path is None else _read(Path(path))
    bearer = None
    if bearer_token_env is not None:
        token = os.environ.get(bearer_token_env, "")
        if not token.strip():
            raise WebConfigError(
                f"http.bearer_token_env: the environment variable {bearer_token_env} is not set"
            )
        bearer = token.strip().encode()
    users = {user: hashed.encode() for user, hashed in parsed.basic_auth_users.items()}
    tls = parsed.tls_server_config
    context = None if tls is None else _ssl_context(tls, Path(path or "."))
    return WebConfig(context, Authenticator(users=users, bearer_token=bearer))


def _read(path: Path) -> WebConfigFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise WebConfigError(f"http.web_config_file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise WebConfigError(f"http.web_config_file {path}: not YAML: {error}") from None
    try:
        return WebConfigFile.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()
        )
        raise WebConfigError(f"http.web_config_file {path}: {problems}") from None


def _ssl_context(tls: TlsServerConfig, config_path: Path) -> ssl.SSLContext:
    # Relative paths are relative to the web config file, as in exporter-toolkit.
    def resolve(name: str) -> str:
        return str(config_path.parent / name) if not os.path.isabs(name) else name

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    try:
        context.load_cert_chain(resolve(tls.cert_file), resolve(tls.key_file))
        context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
        if tls.client_ca_file is not None:
            context.load_verify_locations(resolve(tls.client_ca_file))
        elif context.verify_mode != ssl.CERT_NONE:
            raise WebConfigError(
                f"http.web_config_file {config_path}: tls_server_config.client_auth_type "
                f"{tls.client_auth_type} needs client_ca_file"
            )
    except (OSError, ssl.SSLError) as error:
        raise WebConfigError(
            f"http.web_config_file {config_path}: tls_server_config: {error}"
        ) from None
    return context
