"""Structured logging: one JSON object per line on stderr (``calmon run``), or plain
text for interactive commands. Fields passed as ``extra=`` become JSON keys.

Every line has the URLs in it redacted (``core/redaction.py``) whoever logged it:
httpx logs each request's URL at INFO, userinfo and all.

The Kafka client's own loggers (``kafka.*``) are folded (``KafkaClientLog``): kafka-python
logs every failed connection attempt, dead coordinator and failed heartbeat at WARNING or
ERROR, so two 25 s broker outages once wrote 108 such lines and a log-based alert fired
on a routine restart. calmon's ingest says what matters itself, one line per change of
the cluster's state, quoting the client's latest line. At ``--log-level DEBUG`` the
client's lines are shown as they are.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from monitor.core.redaction import redact_text

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(self._json(record))

    def _json(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class KafkaClientLog(logging.Handler):
    """Keeps the Kafka client's latest WARNING-or-worse line instead of printing it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._latest: str | None = None
        #: Lines folded since the process started.
        self.folded = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.name}: {record.getMessage()}"
        except Exception:  # a client line that does not format is still a line
            line = f"{record.name}: {record.msg!r}"
        if record.exc_info and record.exc_info[1] is not None:
            line += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        self._latest = line[:500]  # handle() holds self.lock around emit()
        self.folded += 1

    def latest(self) -> str | None:
        """The latest folded line, or None."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            return self._latest


#: Installed on the ``kafka`` logger by ``configure_logging`` (unless DEBUG).
KAFKA_CLIENT_LOG = KafkaClientLog()


def configure_logging(*, json: bool, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every run of every job at INFO ("Running job", "executed
    # successfully"): two lines per job per interval. Its warnings (missed runs) stay.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    kafka = logging.getLogger("kafka")
    kafka.removeHandler(KAFKA_CLIENT_LOG)
    if level.upper() == "DEBUG":
        kafka.setLevel(logging.NOTSET)
        kafka.propagate = True
    else:
        kafka.setLevel(logging.WARNING)  # its INFO is per-connection noise
        kafka.addHandler(KAFKA_CLIENT_LOG)
        kafka.propagate = False
