"""The stream's observers (the dashboard, the annotated copy, MQTT, the signals, your own code), told through one
dispatch with one fault policy: an observer that raises is reported once on stderr and never costs the stream or
its output. (An observer whose failure must end the stream, as --annotate's, stops the stream itself.)"""

from __future__ import annotations

import sys


class Observers(list):
    """A list of observers; `tell(method, *args)` calls that method on each that has it."""

    def __init__(self):
        super().__init__()
        self._faulty: set[int] = set()

    def tell(self, method: str, *args) -> None:
        for observer in list(self):
            handler = getattr(observer, method, None)
            if handler is None:
                continue
            try:
                handler(*args)
            except Exception as err:  # noqa: BLE001 — see the module's docstring
                if id(observer) not in self._faulty:
                    self._faulty.add(id(observer))
                    print(f"warning: {type(observer).__name__} failed: {type(err).__name__}: {err}", file=sys.stderr)
