"""Writes the `config` part of helm/calmon/values.schema.json from calmon's settings model.

Run after changing monitor/settings.py: ``make generated`` (scripts/generated.py).
``tests/unit/test_docs.py`` fails when the committed schema differs from what
this writes, so `helm template` / `helm install` refuse exactly what calmon would refuse
(unknown keys, wrong types, bad durations), naming the path, before anything is applied.

What the chart adds to the model, because the chart renders `config` into a ConfigMap
that anyone who can read the namespace can read:

- the secret keys (``store.url``, ``kafka.*_password``, ``alertmanager.password``,
  ``alertmanager.bearer_token``) are refused with a message naming the `secrets` entry
  to use instead;
- a URL with a password in its userinfo (``http://user:pass@host``) is refused in every
  URL key (alertmanager, webhooks, external URL); one that needs it comes from an
  environment variable (``extraEnv``); Alertmanager's are ``alertmanager.username`` and
  ``secrets.alertmanagerPassword``.

The messages name the path and never echo the refused value (``const``, not
``pattern``, on the secret), so the secret does not reach a terminal or a CI log either.

Checks the schema cannot express (a fixed reference needs both ends, a duration must be
positive) are left to ``calmon check-config``, which the migrate hook runs first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "helm" / "calmon" / "values.schema.json"
#: Secret key of calmon's config -> the chart value that carries it.
CHART_SECRETS = {
    ("store", "url"): "secrets.databaseUrl",
    ("kafka", "sasl_password"): "secrets.kafkaSaslPassword",
    ("kafka", "ssl_password"): "secrets.kafkaSslPassword",
    ("alertmanager", "password"): "secrets.alertmanagerPassword",
    ("alertmanager", "bearer_token"): "secrets.alertmanagerBearerToken",
}
#: Keys holding URLs (``*`` any webhook name, ``[]`` a list's items).
URL_KEYS = (("alertmanager", "urls", "[]"), ("webhooks", "*", "url"), ("http", "external_url"))
#: ``scheme://user:password@``; RE2 has no look-ahead, hence if/then around it.
USERINFO_PASSWORD = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@"
NO_PASSWORD_IN_URL = "(a URL without a password: secrets come from `secrets` or extraEnv)"
DESCRIPTION = (
    "calmon.yaml (config/calmon.example.yaml lists every key). Generated from calmon's "
    "settings model by scripts/build_values_schema.py; secrets go in `secrets`, never here."
)


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of calmon's config, as the chart checks it."""
    from monitor.settings import SECRETS, Settings

    assert set(CHART_SECRETS) == set(SECRETS), "a secret of calmon's config has no chart value"
    generated = Settings.model_json_schema(mode="validation")
    schema = _clean(_inline(generated, generated.get("$defs", {})))
    for (section, key), value in CHART_SECRETS.items():
        schema["properties"][section]["properties"][key] = {
            "description": f"A secret: give it as {value} (it would be readable in the ConfigMap).",
            "const": f"(a secret: set {value} instead)",
        }
    for path in URL_KEYS:
        # if/then rather than `not`: helm's message then says why, not "'not' failed".
        _at(schema, path).update(
            {"if": {"pattern": USERINFO_PASSWORD}, "then": {"const": NO_PASSWORD_IN_URL}}
        )
    schema["description"] = DESCRIPTION
    return schema


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace each ``$ref`` by its definition: the subtree must stand on its own."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _inline({**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}, defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def _clean(node: Any) -> Any:
    """Without pydantic's titles, a section's default (its keys have theirs), and
    ``format``: helm asserts formats, and calmon accepts timestamps RFC 3339 does not
    (``+01`` as offset)."""
    if isinstance(node, dict):
        cleaned = {
            k: _clean(v)
            for k, v in node.items()
            if k not in ("title", "format") and not (k == "default" and isinstance(v, dict | list))
        }
        if "patternProperties" in cleaned:
            # A mapping whose keys have a pattern (webhook names): pydantic refuses the
            # others, so does the schema.
            cleaned.setdefault("additionalProperties", False)
        return cleaned
    if isinstance(node, list):
        return [_clean(item) for item in node]
    return node


def _at(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = schema
    for part in path:
        node = _without_null(node)
        if part == "[]":
            node = node["items"]
        elif part == "*":
            (node,) = node["patternProperties"].values()
        else:
            node = node["properties"][part]
    return _without_null(node)


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional value (``anyOf: [X, {type: null}]``)."""
    branches = [b for b in node.get("anyOf", []) if b.get("type") != "null"]
    return branches[0] if len(branches) == 1 else node


def rendered(path: Path = SCHEMA) -> str:
    """The chart's values.schema.json with its `config` part generated anew."""
    values = json.loads(path.read_text())
    values["properties"]["config"] = config_schema()
    return json.dumps(values, indent=2) + "\n"


def write(path: Path = SCHEMA) -> bool:
    """Update the file; True when it changed."""
    text, updated = path.read_text(), rendered(path)
    path.write_text(updated)
    return updated != text


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(f"{SCHEMA.relative_to(ROOT)}: {'updated' if write() else 'unchanged'}")
