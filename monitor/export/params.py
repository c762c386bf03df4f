"""The JSON API's query parameters: every endpoint's, checked and converted, or a
``BadParameter`` that names the parameter (a 400).

The one list the handlers and the OpenAPI document (``openapi.py``) follow.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from monitor.core.series import ALL
from monitor.core.times import parse_time_ms
from monitor.settings import parse_duration
from monitor.windows.metric_names import ALL_KEYS

#: Longer than any id calmon stores (256), short enough to bound the work of a request.
MAX_TEXT = 1024
#: 9999-12-31T23:59:59.999Z, the last time RFC 3339 can write.
MAX_EPOCH_MS = 253_402_300_799_999
_EPOCH_MS = re.compile(r"^\d+$")
_ZERO_DURATION = re.compile(r"^0+(\.0+)?(ms|s|m|h|d|w)$")
#: What the OpenAPI document says ``since`` takes (the server accepts what the CLI does).
SINCE_PATTERNS = (r"^\d{1,15}$", r"^\d{1,9}(\.\d{1,6})?(ms|s|m|h|d|w)$")


class BadParameter(ValueError):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"parameter {name!r}: {problem}")
        self.name = name


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    required: bool = False
    #: ``text`` any string; ``metric`` a metric key; ``since`` a time (see ``_since_ms``).
    kind: Literal["text", "metric", "since"] = "text"
    default: str | None = None


_MODEL = Param("model", "The model id.", required=True)
_WINDOW = Param("window", "A configured window's name (e.g. `1h`); every window if absent.")

ENDPOINTS: dict[str, tuple[Param, ...]] = {
    "/api/v1/series": (),
    "/api/v1/history": (
        _MODEL,
        Param("metric", "A metric key, as in a result's `values` (e.g. `ece`).", True, "metric"),
        Param("model_version", "A model version, or `__all__`; every version if absent."),
        Param("segment", "A segment (`region=eu`), or `__all__`; every segment if absent."),
        _WINDOW,
        Param(
            "since",
            "Points evaluated at or after this: a duration back from now (`7d`, `24h`, `90s`), "
            "an RFC 3339 time with an offset (`2026-01-01T00:00:00Z`), or epoch milliseconds "
            "(digits only). Every stored point if absent.",
            kind="since",
        ),
    ),
    "/api/v1/reliability": (
        _MODEL,
        Param("model_version", "A model version, or `__all__`.", default=ALL),
        Param("segment", "A segment (`region=eu`), or `__all__`.", default=ALL),
        _WINDOW,
    ),
    "/api/v1/recalibration": (
        _MODEL,
        Param("model_version", "A model version; every version if absent."),
        Param("segment", "A segment (`region=eu`), or `__all__`; every segment if absent."),
        _WINDOW,
    ),
    "/api/v1/alerts": (Param("fingerprint", "One alert's fingerprint; every alert if absent."),),
    "/api/v1/openapi.json": (),
}


def parse(path: str, query: Mapping[str, str], *, now_ms: int) -> dict[str, Any]:
    """The endpoint's parameters, converted; defaults filled in; absent optional ones left out."""
    params = ENDPOINTS[path]
    known = {p.name for p in params}
    for name in query:
        if name not in known:
            takes = ", ".join(sorted(known)) if known else "no parameters"
            raise BadParameter(name, f"unknown; {path} takes {takes}")
    values: dict[str, Any] = {}
    for param in params:
        text = query.get(param.name)
        if text is None:
            if param.required:
                raise BadParameter(param.name, "is required")
            if param.default is not None:
                values[param.name] = param.default
            continue
        values[param.name] = _convert(param, text, now_ms)
    return values


def _convert(param: Param, text: str, now_ms: int) -> Any:
    if not text:
        raise BadParameter(param.name, "is empty")
    if len(text) > MAX_TEXT:
        raise BadParameter(param.name, f"longer than {MAX_TEXT} characters")
    if "\x00" in text:
        raise BadParameter(param.name, "contains a NUL character")
    if param.kind == "metric" and text not in ALL_KEYS:
        close = difflib.get_close_matches(text, ALL_KEYS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else " (the keys of a result's values)"
        raise BadParameter(param.name, f"{text!r} is not a metric{hint}")
    if param.kind == "since":
        try:
            return _since_ms(text, now_ms)
        except ValueError as error:
            raise BadParameter(param.name, str(error)) from None
    return text


def _since_ms(text: str, now_ms: int) -> int:
    if _EPOCH_MS.match(text):
        if len(text) > 15 or int(text) > MAX_EPOCH_MS:
            raise ValueError(f"{text[:20]} epoch milliseconds is after the year 9999")
        return int(text)
    if _looks_like_a_time(text):
        return parse_time_ms(text)
    if _ZERO_DURATION.match(text):
        return now_ms
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a duration (7d, 24h, 90s), an RFC 3339 time with an offset "
            "(2026-01-01T00:00:00Z) or epoch milliseconds"
        ) from None
    if not math.isfinite(seconds) or seconds * 1000 >= now_ms:
        return 0  # further back than the epoch: everything
    return now_ms - int(seconds * 1000)


def _looks_like_a_time(text: str) -> bool:
    return len(text) >= 10 and text[4:5] == "-"
