"""A benchmark's results on disk: NAME.json (the data) and NAME.md (the table), each written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from runtime.atomic import write_text


def write_report(out: str | Path, name: str, data, text: str) -> str:
    """Write OUT/NAME.json and OUT/NAME.md (creating OUT). → text, to print."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{name}.json", json.dumps(data, indent=2))
    write_text(out / f"{name}.md", text + "\n")
    return text
