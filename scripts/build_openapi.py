"""Writes docs/openapi.json, the copy of the document the daemon serves at /api/v1/openapi.json.

Run after changing a parameter, a response or a metric key:
``make generated`` (scripts/generated.py). ``tests/unit/test_docs.py`` fails
when the committed copy differs from what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "openapi.json"


def rendered() -> str:
    sys.path.insert(0, str(ROOT))
    from monitor.export.openapi import document

    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    DOC.write_text(rendered(), encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")
