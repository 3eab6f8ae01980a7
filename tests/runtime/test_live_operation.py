"""An unattended device: a stage that hangs fails the stream, the last live window is answered, a stalled reader of
stdout never blocks a stop, a microphone reconnects, the Python API never blocks on records nobody reads, and
systemd hears that the stream is alive."""

import os
import socket
import threading
import time

import numpy as np
import pytest

from runtime.api import SourceOptions, Stream as ApiStream
from runtime.pipeline import Pipeline
from runtime.sources import generic
from runtime.stream import Stream, StreamOptions
from runtime.stream.records import RecordWriter


class Collect:
    def __init__(self):
        self.records, self.summaries = [], []

    def window(self, record):
        self.records.append(record)

    def summary(self, summary):
        self.summaries.append(summary)


def _testsrc(seconds: float, realtime: bool = False):
    return generic(f"testsrc=size=96x72:rate=10:duration={seconds}", "lavfi", audio=False, live=realtime,
                   realtime=realtime)


@pytest.fixture
def pipeline(bundle_f16):
    p = Pipeline(bundle_f16)
    yield p
    p.close()


def test_a_hung_stage_fails_the_stream(pipeline):
    hang = threading.Event()
    calls = []

    def answer(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # the warm-up passes; the first real window hangs until the test ends
            hang.wait()
            raise RuntimeError("released")  # never into the model, which the fixture frees
        return real(*args, **kwargs)

    real, pipeline.answer = pipeline.answer, answer
    stream = Stream(pipeline, [_testsrc(30, realtime=True)], StreamOptions(stage_timeout_s=1.0, window_s=1.0, hop_s=0.5),
                    Collect())
    started = time.monotonic()
    summary = stream.run()
    hang.set()
    assert time.monotonic() - started < 15
    assert any("llm stage made no progress" in e for e in summary["input_errors"])
    assert stream.exit_status(summary) == 1


def test_the_stage_timeout_follows_the_warm_up_window(pipeline):
    stream = Stream(pipeline, [_testsrc(1)], StreamOptions(), Collect())
    assert stream.stage_timeout_s == 300.0  # before any window has been timed
    started = time.monotonic()
    stream.warm_up()
    cost = time.monotonic() - started
    assert max(60.0, 20 * cost * 0.9) <= stream.stage_timeout_s <= max(60.0, 20 * cost)
    fixed = Stream(pipeline, [_testsrc(1)], StreamOptions(stage_timeout_s=7.5), Collect())
    fixed.warm_up()
    assert fixed.stage_timeout_s == 7.5


def test_the_last_live_window_is_answered_when_the_stream_is_stopped(pipeline):
    """A slow LLM behind a live input: windows wait and are dropped, but the one under way when the stream stops
    and the windows flushed at the end are never evicted by the end marker."""
    real = pipeline.answer
    pipeline.answer = lambda *a, **k: (time.sleep(0.6), real(*a, **k))[1]
    out = Collect()
    stream = Stream(pipeline, [_testsrc(60, realtime=True)], StreamOptions(window_s=1.0, hop_s=0.25, warmup=False), out)
    threading.Timer(3.0, stream.stop.set).start()
    summary = stream.run()
    stream.records.close()  # the writer thread has written every record
    answered = [r["window"] for r in out.records if "error" not in r]
    errors = [(r["window"], r["error"]) for r in out.records if "error" in r]
    assert summary["dropped"] > 0, "the LLM was slower than the input: windows must have been dropped"
    assert summary["windows"] == summary["answered"] + summary["dropped"] + summary["failed"]
    assert answered and answered[-1] == summary["windows"] - 1, f"the last window was lost ({errors=})"


def test_a_reader_that_stops_reading_never_blocks_a_stop(monkeypatch):
    monkeypatch.setattr(RecordWriter, "QUEUE_SIZE", 2)
    blocked = threading.Event()

    class Stalled:  # a pipe whose reader keeps it open but never reads: write() never returns
        def window(self, record):
            blocked.wait()

        summary = window

    records = RecordWriter(Stalled())
    records.start()
    for i in range(4):
        threading.Thread(target=records.write, args=({"window": i},), daemon=True).start()
    time.sleep(0.5)
    records.stopping.set()
    started = time.monotonic()
    records.write({"window": 99})
    records.summary({})
    records.close(timeout=1.0)
    assert time.monotonic() - started < 8
    assert records.stuck and records.given_up >= 1
    blocked.set()


def test_a_microphone_and_an_audio_input_reconnect_with_the_camera():
    for source in (SourceOptions(camera=0, mic="hw:1,0", reconnect=True),
                   SourceOptions(input="testsrc", format="lavfi", audio_input="sine", audio_format="lavfi", reconnect=True)):
        assert [spec.reconnect for spec in source.specs()] == [True, True]


def test_an_audio_fifo_that_stops_and_comes_back_is_heard_again(pipeline, tmp_path):
    """An audio input that ends (a USB microphone unplugged) is reopened with --reconnect, and the audio it gives
    after the outage reaches later windows, in step with the video."""
    from benchmarks.faults import streaming_wav_header

    fifo = tmp_path / "mic.wav"
    os.mkfifo(fifo)
    stop = threading.Event()

    def speaker():
        tone = (np.sin(np.arange(1600) / 16000 * 2 * np.pi * 300) * 8000).astype("<i2").tobytes()  # 0.1 s
        for burst in range(2):
            with open(fifo, "wb") as f:  # unplugged after 1.5 s, back after a pause
                f.write(streaming_wav_header(16000))
                for _ in range(15):
                    if stop.is_set():
                        return
                    f.write(tone)
                    f.flush()
                    time.sleep(0.1)
            time.sleep(1.0)

    threading.Thread(target=speaker, daemon=True).start()
    audio = generic(str(fifo), "wav", video=False, reconnect=True)
    out = Collect()
    stream = Stream(pipeline, [_testsrc(8, realtime=True), audio],
                    StreamOptions(window_s=1.0, hop_s=0.5, warmup=False, stall_s=30), out)
    threading.Timer(7.0, stream.stop.set).start()
    summary = stream.run()
    stream.records.close()
    stop.set()
    assert summary["reconnects"] >= 1
    late = [r for r in out.records if r["start"] >= 3.5]
    assert late and any(r["audio"] for r in late), "no audio after the microphone came back"


def test_the_api_never_blocks_on_records_nobody_reads(monkeypatch, pipeline, clip_path):
    import runtime.api as api

    class Small(api._Queue):
        def __init__(self):
            super().__init__()
            self.items = api.queue.Queue(maxsize=2)

    monkeypatch.setattr(api, "_Queue", Small)
    seen = []
    stream = ApiStream(str(clip_path), pipeline=pipeline, window_s=0.5, hop_s=0.1, warmup=False)
    stream.observe(type("Observer", (), {"record": lambda self, r: seen.append(r), "close": lambda self: None})())
    stream.start()
    deadline = time.monotonic() + 60
    while stream._thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not stream._thread.is_alive(), "the stream froze with nobody iterating"
    assert len(seen) > 4 and stream.summary["answered"] == len(seen)
    stream.stop(timeout=5)


def test_stop_ends_a_stream_nobody_iterates(pipeline):
    stream = ApiStream(input="testsrc=size=96x72:rate=10", format="lavfi", realtime=True, pipeline=pipeline,
                       warmup=False)
    stream.start()
    time.sleep(1.0)
    stream.stop(timeout=20)
    assert not stream._thread.is_alive() and stream.summary is not None


def test_systemd_hears_ready_watchdog_and_stopping(pipeline, tmp_path, monkeypatch, clip_path):
    address = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    said = []

    def listen():
        try:
            while True:
                said.append(server.recv(64).decode())
        except (socket.timeout, OSError):
            pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    Stream(pipeline, [_testsrc(2, realtime=True)], StreamOptions(warmup=False, window_s=1.0), Collect()).run()
    listener.join(10)
    server.close()
    assert said[0] == "READY=1" and "WATCHDOG=1" in said and said[-1] == "STOPPING=1"


def test_a_service_manager_that_does_not_read_never_stalls_the_stream(tmp_path, monkeypatch):
    from runtime import systemd

    address = str(tmp_path / "deaf")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    started = time.monotonic()
    sent = [systemd.notify("WATCHDOG=1") for _ in range(2000)]
    assert time.monotonic() - started < 5 and sent[0] and not sent[-1]
    server.close()
