"""The one thread that writes a stream's records. A reader that goes away (`| head -2`) is a normal end: the
stream stops, nothing more is written, and the process exits 0 without a traceback, as `yes | head` does.

A reader that stops reading but keeps the pipe open blocks the writer thread inside write(); nothing can
unblock it. Once the stream is stopping, records wait at most STOPPING_WAIT_S for room and are then given up,
so a SIGTERM always ends the process (`stuck` tells the caller not to flush stdout at exit).

Every answered window record carries `people`: one entry per tracked face (largest first, at most --max-people),
the `Person` fields below as a JSON object. The record's top-level labels / sentiment / text stay the primary
person's (the largest face), so a single-person reader keeps working; `people` is [] when no face was seen (or faces
are not cropped), and the top-level fields then answer for the whole frame as before."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields

from runtime.stream.observers import Observers

_END = object()
STOPPING_WAIT_S = 2.0


@dataclass
class Person:
    """One tracked face's answer in one window (a record's `people` entry)."""

    id: int  # track id: the same person keeps it across windows while the tracker follows them
    box: list[int]  # [x, y, w, h] face box in frame pixels, on the window's last frame the person was seen in
    labels: list[str] = field(default_factory=list)
    sentiment: str = "neutral"  # runtime/sentiment.py of the labels
    text: str = ""  # the LLM's answer for this person
    speaking: bool | None = None  # mouth moves while the window holds voice; None: cannot tell (no VAD, no audio)
    primary: bool = False  # the largest face: the record's top-level fields are this person's
    frames: int = 0  # sampled frames of the window the face was seen in

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class WindowAnswer:
    """One window's answer: the record the stream writes as a JSON line, and what the Python API yields."""

    window: int
    start: float  # seconds since the stream began
    end: float
    partial: bool = False
    labels: list[str] = field(default_factory=list)
    sentiment: str = "neutral"
    text: str = ""
    face: bool | None = None
    video: bool = True
    audio: bool = True
    speech: bool | None = None
    subtitle: str = ""
    dropped: int = 0
    tokens: int = 0
    timings_ms: dict = field(default_factory=dict)
    people: list = field(default_factory=list)  # Person fields, largest face first
    error: str | None = None
    skipped: str | None = None
    affect: dict | None = None  # valence, arousal, smoothed, held emotion and sentiment: runtime/signals.py
    events: list = field(default_factory=list)  # the change events this window caused

    OPTIONAL = ("error", "skipped", "affect", "events")  # in a record only when they say something

    def to_record(self) -> dict:
        record = asdict(self)
        for key in self.OPTIONAL:
            if not record[key]:
                del record[key]
        return record

    @classmethod
    def from_record(cls, record: dict) -> "WindowAnswer":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})


class RecordWriter:
    QUEUE_SIZE = 1024

    def __init__(self, writer, on_closed=None, observers: list | None = None):
        self.writer = writer
        self.on_closed = on_closed
        self.observers = observers if observers is not None else Observers()  # told each record, in order
        self.closed = False  # the output's reader has gone
        self._queue: queue.Queue = queue.Queue(maxsize=self.QUEUE_SIZE)
        self.stopping = threading.Event()  # the stream is ending: records no longer wait long for a slow reader
        self.given_up = 0  # records not written because the reader stopped reading
        self._thread = threading.Thread(target=self._run, daemon=True, name="records")

    def start(self) -> None:
        self._thread.start()

    def write(self, record: dict) -> None:
        if not self.closed:
            self._put(("window", record))

    def summary(self, summary: dict) -> None:
        if not self.closed:
            self._put(("summary", summary))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread (unstarted: write it here); waits at most `timeout` s."""
        self.stopping.set()
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        deadline = time.monotonic() + timeout
        self._put(_END, deadline)
        self._thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def stuck(self) -> bool:
        """The writer thread is blocked in a write that a reader will never take."""
        return self._thread.is_alive() and self.stopping.is_set()

    def _put(self, item, deadline: float | None = None) -> None:
        while True:
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if self.closed or not self._thread.is_alive():
                    return
                if self.stopping.is_set():
                    deadline = deadline or time.monotonic() + STOPPING_WAIT_S
                if (deadline is not None and time.monotonic() > deadline) or self.given_up:
                    self.given_up += 1
                    return

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self.closed:
                continue
            kind, record = item
            self.observers.tell("summary" if kind == "summary" else "record", record)
            try:
                (self.writer.window if kind == "window" else self.writer.summary)(record)
            except (OSError, ValueError) as err:  # EPIPE; ValueError: the stream was closed under us
                self._closed(err)

    def _closed(self, err) -> None:
        self.closed = True
        try:  # Python would report the broken pipe again when it flushes stdout at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        if self.on_closed:
            self.on_closed()
