"""A local dashboard while a stream runs (`--serve [HOST:]PORT`, extra `serve`: Flask, prometheus-client, Pillow).

    /             the page: the live picture with the face box and current labels, a timeline of labels and
                  sentiment, the per-stage latency of the last window — everything served from here, no CDN
    /video.mjpeg  the picture as MJPEG (multipart JPEG): an <img> shows it in any browser, with no client code
                  and no signalling; WebRTC would save bandwidth, but a kiosk on the same device does not need it
    /events       Server-Sent Events: the stream's JSON records as they are written, then its summary
    /metrics      Prometheus text: window latency and per-stage histograms, answered / dropped / failed windows,
                  input errors, reconnects
    /healthz      200 while a window has been answered (or skipped as silent) within --health-timeout seconds
                  (or the stream is still starting), else 503

It binds to 127.0.0.1 unless a host is given.
"""

from __future__ import annotations

import importlib.util
import io
import json
import queue
import threading
import time
from collections import deque

from runtime.errors import EdgeError
from runtime.overlay import FaceBoxes, draw

STAGES = ("face", "preprocess", "vision", "audio", "fusion", "llm_prefill", "llm_decode", "window_latency")
PICTURE_SIDE = 640  # the served picture's long side


class ServeError(EdgeError):
    pass


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ServeError(f"--serve takes [HOST:]PORT, not {address!r}") from None
    if not 0 < number < 65536:
        raise ServeError(f"--serve port {number} is not a port number")
    return host or "127.0.0.1", number


class Dashboard:
    def __init__(self, address: str, stream, health_timeout_s: float = 30.0, fps: float = 5.0):
        if not all(importlib.util.find_spec(m) for m in ("flask", "prometheus_client", "PIL")):
            raise ServeError("--serve needs its extra: pip install 'affectgpt-edge[serve]'")
        self.host, self.port = parse_address(address)
        self.stream = stream
        self.health_timeout_s = health_timeout_s
        self.fps = fps
        self.started = time.monotonic()
        self.last_answer: float | None = None
        self._frame = None  # (t, RGB array): the latest picture, replaced as frames pass
        self._jpeg = None
        self._picture_lock = threading.Lock()
        self._current = {"labels": [], "sentiment": "neutral"}
        self.history: deque = deque(maxlen=60)
        self._subscribers: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._faces = FaceBoxes()
        self._metrics()
        self.app = self._app()
        self._server = None

    # --- observer of the stream ---------------------------------------------------------------------

    def frame(self, t: float, frame) -> None:
        """The reader thread, before the frame is shared: a small RGB copy at most `fps` times a second (PyAV's
        converter must not run on one frame from two threads)."""
        if self._frame is not None and t - self._frame[0] < 1 / self.fps and t >= self._frame[0]:
            return
        scale = min(1.0, PICTURE_SIDE / max(frame.width, frame.height))
        rgb = frame.reformat(width=max(2, int(frame.width * scale) // 2 * 2),
                             height=max(2, int(frame.height * scale) // 2 * 2), format="rgb24").to_ndarray()
        self._frame = (t, rgb)

    def record(self, record: dict) -> None:
        outcome = "failed" if record.get("error") else "skipped" if record.get("skipped") else "answered"
        self.m_windows.labels(outcome).inc()
        if outcome != "failed":  # a silent window skipped under --vad skip is the stream working too
            self.last_answer = time.monotonic()
        if outcome == "answered":
            self._current = {"labels": record["labels"], "sentiment": record["sentiment"]}
            timings = record.get("timings_ms", {})
            if "window_latency" in timings:
                self.m_latency.observe(timings["window_latency"] / 1e3)
            for stage in STAGES:
                if stage in timings:
                    self.m_stage.labels(stage).observe(timings[stage] / 1e3)
        with self._lock:
            self.history.append(record)
        self._publish(record)

    def summary(self, summary: dict) -> None:
        self._publish({"summary": summary})

    def _publish(self, item: dict) -> None:
        data = json.dumps(item)
        with self._lock:
            for subscriber in self._subscribers:
                try:
                    subscriber.put_nowait(data)
                except queue.Full:  # a slow client loses its oldest events, never the stream's time
                    try:
                        subscriber.get_nowait()
                        subscriber.put_nowait(data)
                    except (queue.Empty, queue.Full):
                        pass

    # --- metrics --------------------------------------------------------------------------------------

    def _metrics(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry()
        buckets = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16)
        self.m_latency = Histogram("affectgpt_window_latency_seconds", "Window ready to answer written", buckets=buckets,
                                   registry=registry)
        self.m_stage = Histogram("affectgpt_stage_seconds", "Time per stage of a window", ["stage"], buckets=buckets,
                                 registry=registry)
        self.m_windows = Counter("affectgpt_windows", "Windows by outcome", ["outcome"], registry=registry)
        counts = self.stream.counts
        Gauge("affectgpt_dropped_windows", "Stale windows dropped to keep up", registry=registry).set_function(
            lambda: counts["dropped"])
        Gauge("affectgpt_input_errors", "Inputs that reported an error", registry=registry).set_function(
            lambda: sum(bool(r.stats.error) for r in self.stream.readers))
        Gauge("affectgpt_reconnects", "Input reconnects", registry=registry).set_function(
            lambda: sum(r.stats.reconnects for r in self.stream.readers))
        Gauge("affectgpt_corrupt_packets", "Corrupt packets skipped", registry=registry).set_function(
            lambda: sum(r.stats.corrupt_packets for r in self.stream.readers))

    # --- the web side -----------------------------------------------------------------------------------

    def picture(self) -> bytes | None:
        """The latest frame with the face box and current labels, as JPEG."""
        latest = self._frame
        if latest is None:
            return None
        with self._picture_lock:  # one JPEG per picture, whatever the number of viewers
            key = (id(latest), tuple(self._current["labels"]))
            if self._jpeg is None or self._jpeg[0] != key:
                t, rgb = latest
                image = draw(rgb, self._faces.update(t, rgb), self._current["labels"], self._current["sentiment"])
                out = io.BytesIO()
                image.save(out, "JPEG", quality=75)
                self._jpeg = (key, out.getvalue())
            return self._jpeg[1]

    def _app(self):
        from flask import Flask, Response, jsonify

        app = Flask("affectgpt-dashboard")

        @app.get("/")
        def page():
            return Response(PAGE, mimetype="text/html")

        @app.get("/video.mjpeg")
        def video():
            def frames():
                while True:
                    jpeg = self.picture()
                    if jpeg is not None:
                        yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode() + \
                            b"\r\n\r\n" + jpeg + b"\r\n"
                    time.sleep(1 / self.fps)
            return Response(frames(), mimetype="multipart/x-mixed-replace; boundary=frame")

        @app.get("/events")
        def events():
            subscriber: queue.Queue = queue.Queue(maxsize=256)
            with self._lock:
                backlog = list(self.history)[-20:]
                self._subscribers.append(subscriber)

            def stream():
                try:
                    for record in backlog:
                        yield f"data: {json.dumps(record)}\n\n"
                    while True:
                        try:
                            yield f"data: {subscriber.get(timeout=10)}\n\n"
                        except queue.Empty:
                            yield ": keep-alive\n\n"
                finally:
                    with self._lock:
                        self._subscribers.remove(subscriber)
            return Response(stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})

        @app.get("/metrics")
        def metrics():
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            return Response(generate_latest(self.registry), mimetype=CONTENT_TYPE_LATEST)

        @app.get("/healthz")
        def healthz():
            now = time.monotonic()
            since = now - (self.last_answer if self.last_answer is not None else self.started)
            ok = since <= self.health_timeout_s and not self.stream.failed.is_set()
            body = {"status": "ok" if ok else "stale", "seconds_since_last_answer":
                    round(now - self.last_answer, 1) if self.last_answer is not None else None,
                    "answered": self.stream.counts["answered"], "timeout_s": self.health_timeout_s}
            return jsonify(body), 200 if ok else 503

        return app

    def start(self) -> "Dashboard":
        from werkzeug.serving import make_server

        try:
            self._server = make_server(self.host, self.port, self.app, threaded=True)
        except OSError as err:
            raise ServeError(f"--serve cannot listen on {self.host}:{self.port}: {err.strerror or err}") from None
        import logging
        import sys

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request: stderr is for the stream's news
        threading.Thread(target=self._server.serve_forever, daemon=True, name="dashboard").start()
        print(f"dashboard: {self.url}", file=sys.stderr, flush=True)
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>affectgpt-edge</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { margin: 0; font: 15px system-ui, sans-serif; background: #111; color: #eee; }
 header { padding: 10px 16px; background: #1d1d1d; display: flex; gap: 16px; align-items: baseline; }
 header h1 { font-size: 17px; margin: 0; } #status { color: #999; }
 main { display: grid; grid-template-columns: minmax(320px, 2fr) minmax(260px, 1fr); gap: 16px; padding: 16px; }
 #video { width: 100%; background: #000; border-radius: 6px; }
 #labels { font-size: 26px; margin: 4px 0 2px; } #sentiment { color: #aaa; margin-bottom: 12px; }
 .positive { color: #2ecc71; } .negative { color: #e74c3c; } .neutral { color: #ddd; }
 #timeline { display: flex; gap: 3px; align-items: flex-end; height: 64px; margin: 8px 0 16px; }
 #timeline div { flex: 1; min-width: 6px; border-radius: 2px; }
 table { border-collapse: collapse; width: 100%; } td { padding: 2px 6px; border-bottom: 1px solid #2a2a2a; }
 td.ms { text-align: right; font-variant-numeric: tabular-nums; }
</style></head>
<body>
<header><h1>affectgpt-edge</h1><span id="status">waiting for the first window…</span></header>
<main>
 <section><img id="video" src="/video.mjpeg" alt="live picture"></section>
 <section>
  <div id="labels">…</div><div id="sentiment"></div>
  <div>Timeline (newest right)</div><div id="timeline"></div>
  <div>Last window, ms per stage</div><table id="stages"></table>
 </section>
</main>
<script>
const colors = {positive: "#2ecc71", negative: "#e74c3c", neutral: "#888"};
const timeline = document.getElementById("timeline");
function show(r) {
  if (r.summary) { document.getElementById("status").textContent = "stream ended: " + r.summary.answered + " windows answered"; return; }
  if (r.error || r.skipped) return;
  const labels = document.getElementById("labels");
  labels.textContent = r.labels.length ? r.labels.join(", ") : (r.text || "—");
  labels.className = r.sentiment;
  document.getElementById("sentiment").textContent = r.sentiment + " · window " + r.window + " (" + r.start.toFixed(1) + "–" + r.end.toFixed(1) + " s)";
  document.getElementById("status").textContent = "live · " + (r.timings_ms.window_latency || 0).toFixed(0) + " ms window latency";
  const bar = document.createElement("div");
  bar.style.background = colors[r.sentiment] || colors.neutral;
  bar.style.height = (20 + 8 * r.labels.length) + "px";
  bar.title = r.labels.join(", ");
  timeline.appendChild(bar);
  while (timeline.children.length > 40) timeline.removeChild(timeline.firstChild);
  const rows = Object.entries(r.timings_ms).map(([k, v]) => "<tr><td>" + k + "</td><td class=ms>" + v.toFixed(1) + "</td></tr>");
  document.getElementById("stages").innerHTML = rows.join("");
}
new EventSource("/events").onmessage = (e) => show(JSON.parse(e.data));
</script>
</body></html>
"""
