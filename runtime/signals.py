"""Signals an HMI can use, per person: valence and arousal, smoothed, and change events with hysteresis.

Each answered window's record gains `affect` — on the record itself (the primary person, or person 0 where the
record has no `people` list) and on each entry of `people`:

    "affect": {"valence": -0.71, "arousal": -0.71,            # this window's labels (runtime/affect_space.py)
               "smoothed": {"valence": -0.52, "arousal": -0.48},  # exponential smoothing, time constant smooth_s
               "emotion": "sad", "sentiment": "negative"}     # the held states (None until one holds)

The smoothing weighs a new window by 1 − exp(−Δt / smooth_s), Δt the media time since that person's last
answer, so it means the same seconds at any hop; smooth_s = 0 turns it off. The held states come from each
window's own answer — the dominant emotion is the family (runtime.affect_space.FAMILIES) most of its labels
belong to, the sentiment is the window's — and change only when the new one is seen in `hold` consecutive
answered windows of that person (hysteresis); smoothing them too would add its lag to the events'. Each change
is an event:

    {"person": 0, "kind": "emotion", "from": "sad", "to": "happy", "at": 14.0, "window": 6, "start": 10.0, "end": 14.0}

(`at` is the end of the window that made it hold, in media seconds; `from` is None for a person's first state.)
Events ride on their window's record as `events` for observers; `EventLines` writes them as their own lines.
"""

from __future__ import annotations

import math

from runtime.affect_space import labels_affect

# one hop of the default: a step is followed to 86 % within two hops (4 s, the window length, as soon as the
# windows themselves can see it); a single odd window still moves the value by 63 %, damped by the next ones
DEFAULT_SMOOTH_S = 2.0
DEFAULT_HOLD = 2  # windows: one odd window never fires an event
FORGET_S = 60.0  # a person unseen this long (media seconds) starts afresh: ids from a tracker may be many


def people_of(record: dict) -> list[dict]:
    """The people of a record: its `people` list, else the record itself as person 0."""
    return record.get("people") or [record]


class _Person:
    def __init__(self):
        self.t: float | None = None
        self.valence = self.arousal = 0.0
        self.state: dict[str, str | None] = {"emotion": None, "sentiment": None}
        self.candidate: dict[str, tuple[str, int] | None] = {"emotion": None, "sentiment": None}


class Signals:
    """Adds `affect` to each window record and finds the events; one instance per stream, fed in output order
    (an observer of the record writer: `record(dict)`, `summary(dict)`)."""

    def __init__(self, smooth_s: float = DEFAULT_SMOOTH_S, hold: int = DEFAULT_HOLD):
        if smooth_s < 0 or not math.isfinite(smooth_s):
            raise ValueError(f"smooth must be 0 (off) or a positive number of seconds, not {smooth_s}")
        if hold < 1:
            raise ValueError(f"hold must be at least 1 window, not {hold}")
        self.smooth_s = float(smooth_s)
        self.hold = int(hold)
        self.people: dict[object, _Person] = {}
        self.events = 0

    def record(self, record: dict) -> None:
        record["events"] = self.update(record)

    def summary(self, summary: dict) -> None:
        summary["events"] = self.events

    def update(self, record: dict) -> list[dict]:
        """Add `affect` to an answered record's people (in place). → the events it causes."""
        if record.get("error") or record.get("skipped") or "labels" not in record:
            return []
        end = float(record.get("end", 0.0))
        events = []
        people = record.get("people")
        for i, person in enumerate(people_of(record)):
            pid = person.get("id", i) if people else 0
            if "labels" not in person:
                continue
            person["affect"], changes = self._person(pid, person, end)
            events += [{"person": pid, "kind": kind, "from": old, "to": new, "at": end, "window": record.get("window"),
                        "start": record.get("start"), "end": end} for kind, old, new in changes]
            if people and person.get("primary"):
                record["affect"] = person["affect"]
        if people and "affect" not in record:
            record["affect"] = people[0].get("affect")
        self._forget(end)
        self.events += len(events)
        return events

    def _person(self, pid, person: dict, t: float) -> tuple[dict, list]:
        valence, arousal, shares = labels_affect(list(person.get("labels") or []))
        p = self.people.setdefault(pid, _Person())
        dt = None if p.t is None else t - p.t
        if dt is None or dt <= 0 or self.smooth_s == 0:
            w = 1.0  # the first answer, a clock that went back, or no smoothing: take the window as it is
        else:
            w = 1.0 - math.exp(-dt / self.smooth_s)
        p.t = t
        p.valence += w * (valence - p.valence)
        p.arousal += w * (arousal - p.arousal)
        best = max(shares.values())  # a tie keeps the held family, else the first label's
        seen = {"emotion": p.state["emotion"] if shares.get(p.state["emotion"]) == best else
                next(f for f, share in shares.items() if share == best),
                "sentiment": person.get("sentiment") or "neutral"}
        changes = []
        for kind, value in seen.items():
            if value == p.state[kind]:
                p.candidate[kind] = None
                continue
            count = p.candidate[kind][1] + 1 if p.candidate[kind] and p.candidate[kind][0] == value else 1
            p.candidate[kind] = (value, count)
            if count >= self.hold:
                changes.append((kind, p.state[kind], value))
                p.state[kind], p.candidate[kind] = value, None
        affect = {"valence": valence, "arousal": arousal,
                  "smoothed": {"valence": round(p.valence, 3), "arousal": round(p.arousal, 3)}, **p.state}
        return affect, changes

    def _forget(self, now: float) -> None:
        for pid in [pid for pid, p in self.people.items() if p.t is not None and now - p.t > FORGET_S]:
            del self.people[pid]


class EventLines:
    """A writer (runtime/outputs.py) that writes each window's events after it, through the writer's `event()`.
    A writer without `event()` gets the record with its `events` list, as observers do."""

    def __init__(self, writer):
        self.writer = writer

    def window(self, record: dict) -> None:
        events = record.get("events")
        if events is None or not hasattr(self.writer, "event"):
            self.writer.window(record)
            return
        self.writer.window({k: v for k, v in record.items() if k != "events"})
        for event in events:
            self.writer.event(event)

    def summary(self, summary: dict) -> None:
        self.writer.summary(summary)

    def __getattr__(self, name):
        return getattr(self.writer, name)
