"""A local dashboard while a stream runs (`--serve [HOST:]PORT`, extra `serve`: Flask, prometheus-client, Pillow).

    /             the page: the live picture with the face box and current labels, a timeline of labels and
                  sentiment, the per-stage latency of the last window — everything served from here, no CDN
    /video.mjpeg  the picture as MJPEG (multipart JPEG): an <img> shows it in any browser, with no client code
                  and no signalling; WebRTC would save bandwidth, but a kiosk on the same device does not need it
    /events       Server-Sent Events: the stream's JSON records as they are written, then its summary
    /metrics      Prometheus text: window latency and per-stage histograms, answered / dropped / failed windows,
                  input errors, reconnects
    /healthz      200 {"status": "ok"} while a window has been answered (or skipped as silent) within
                  --health-timeout seconds (or the stream is still starting), else 503 {"status": "not ok"}

It shows a camera picture and what people say, so it is guarded: it binds to 127.0.0.1 unless a host is given;
it answers only Host names it knows (loopback, the bound address, IP literals, names from --dashboard-host or
$AFFECTGPT_DASHBOARD_HOSTS), which defeats DNS rebinding; a token ($AFFECTGPT_DASHBOARD_TOKEN, or the file
--dashboard-token-file names — never the command line, which `ps` shows) is required off loopback and, once
given as `?token=`, kept in an HttpOnly SameSite=Strict cookie, since <img> and EventSource send no headers.
/healthz is open and says only ok / not ok. Connections wait for their request in one selector thread, not in
a thread each; requests run on a bounded pool, beyond which the server answers 503; sockets time out.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import io
import ipaddress
import json
import logging
import os
import queue
import selectors
import socket
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

from runtime.errors import EdgeError
from runtime.overlay import FaceBoxes, draw
from runtime.redact import redact
from runtime.signals import people_of

STAGES = ("face", "preprocess", "vision", "audio", "fusion", "llm_prefill", "llm_decode", "window_latency")
PICTURE_SIDE = 640  # the served picture's long side
TOKEN_ENV = "AFFECTGPT_DASHBOARD_TOKEN"
HOSTS_ENV = "AFFECTGPT_DASHBOARD_HOSTS"
COOKIE = "affectgpt_dashboard"
MIN_TOKEN = 16  # characters: `openssl rand -hex 16` gives 32
WORKERS = 16  # requests served at once; one more is answered 503
STREAMS = 12  # of those, long-lived feeds (/video.mjpeg, /events): the rest stay free for the page, /metrics, /healthz
WAITING = 256  # connections waiting for their request line; beyond, the oldest is closed
IDLE_S = 10.0  # a connection that sends no request for this long is closed
SOCKET_TIMEOUT_S = 10.0  # each read or write of a request in progress, feeds included (a reader that stops reading)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
        b"Retry-After: 2\r\nConnection: close\r\n\r\nbusy\n")


class ServeError(EdgeError):
    pass


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ServeError(f"--serve takes [HOST:]PORT, not {address!r}") from None
    if not 0 <= number < 65536:
        raise ServeError(f"--serve port {number} is not a port number")
    return host.strip("[]") or "127.0.0.1", number


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file: str | os.PathLike | None = None) -> str | None:
    """The dashboard's token: the file's first line when a file is named, else $AFFECTGPT_DASHBOARD_TOKEN, else None."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8", errors="replace").strip()
        except OSError as err:
            raise ServeError(f"cannot read the dashboard token file {token_file}: {err.strerror or err}") from None
        where = f"the token file {token_file}"
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
        where = f"${TOKEN_ENV}"
        if not token:
            return None
    if len(token) < MIN_TOKEN or any(c.isspace() or not c.isprintable() for c in token):
        raise ServeError(f"{where} must hold a token of at least {MIN_TOKEN} printable characters without spaces "
                         "(e.g. from `openssl rand -hex 16`)")
    return token


def dashboard_settings(address: str, token_file=None) -> tuple[str, int, str | None]:
    """→ (host, port, token), checked before anything loads: off loopback a token is required."""
    host, port = parse_address(address)
    token = read_token(token_file)
    if token is None and not is_loopback(host):
        raise ServeError(f"--serve {host} is reachable from other machines: give it a token in ${TOKEN_ENV} or "
                         "a file named by --dashboard-token-file")
    return host, port, token


class _Prefixed(io.RawIOBase):
    """A connection's bytes with the request head the selector already read put back in front."""

    def __init__(self, head: bytes, conn: socket.socket):
        self.head, self.conn = head, conn

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        return self.conn.recv_into(buffer)


class _Server:
    """werkzeug's request handler on a bounded pool. An accepted connection waits in one selector (no thread)
    until its whole request head has arrived — an idle or slow client (slowloris) costs a file descriptor, not
    a thread, and is closed after IDLE_S — then runs on one of WORKERS threads; with none free it is answered
    503. Every socket read and write of a running request times out."""

    def __init__(self, host: str, port: int, app):
        from werkzeug.serving import WSGIRequestHandler

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(128)
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self.port = self.server_address[1]
        self.host, self.app = host, app
        # what werkzeug's handler reads from its server
        self.multithread, self.multiprocess, self.passthrough_errors, self.ssl_context = False, False, False, None
        self._server_version = "affectgpt-dashboard"
        heads = self._heads = {}  # connection → the request head read while it waited

        class Handler(WSGIRequestHandler):
            timeout = SOCKET_TIMEOUT_S
            protocol_version = "HTTP/1.0"  # werkzeug closes every connection after its response anyway

            def setup(self):
                super().setup()
                self.rfile.close()
                self.rfile = io.BufferedReader(_Prefixed(heads.pop(self.connection, b""), self.connection))

        self.handler = Handler
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="dashboard")
        self._free = threading.Semaphore(WORKERS)
        self._waiting: dict[socket.socket, list] = {}  # connection → [client address, accepted at, bytes so far]
        self._stop = threading.Event()
        self._stopped = threading.Event()

    def log(self, *args) -> None:  # no line per request: stderr is for the stream
        pass

    def serve_forever(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.25):
                    if key.fileobj is self.socket:
                        self._accept(selector)
                    else:
                        self._dispatch(selector, key.fileobj)
                now = time.monotonic()
                for conn, (_, since, _) in list(self._waiting.items()):
                    if now - since > IDLE_S:
                        self._drop(selector, conn)
        finally:
            for conn in list(self._waiting):
                self._drop(selector, conn)
            selector.close()
            self.socket.close()
            self._stopped.set()

    def _accept(self, selector) -> None:
        for _ in range(64):  # what the backlog holds now
            try:
                conn, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of descriptors, or the client gave up first
                return
            if len(self._waiting) >= WAITING:  # room for the newcomer: the connection idle longest goes
                self._drop(selector, next(iter(self._waiting)))
            conn.setblocking(False)
            self._waiting[conn] = [address, time.monotonic(), b""]
            selector.register(conn, selectors.EVENT_READ)

    def _drop(self, selector, conn) -> None:
        self._waiting.pop(conn, None)
        try:
            selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _dispatch(self, selector, conn) -> None:
        """Read what has come; once the request head is whole, hand the connection to a worker."""
        waiting = self._waiting[conn]
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(selector, conn)
            return
        waiting[2] += data
        head = waiting[2]
        if b"\r\n\r\n" not in head and b"\n\n" not in head:
            if len(head) > 16384:  # no request head is this long
                self._drop(selector, conn)
            return
        address = waiting[0]
        self._waiting.pop(conn)
        selector.unregister(conn)
        conn.setblocking(True)
        if not self._free.acquire(blocking=False):
            try:
                conn.settimeout(1)
                conn.sendall(BUSY)
            except OSError:
                pass
            conn.close()
            return
        self._heads[conn] = head
        try:
            self._pool.submit(self._handle, conn, address)
        except RuntimeError:  # shutting down
            self._heads.pop(conn, None)
            self._free.release()
            conn.close()

    def _handle(self, conn, address) -> None:
        try:
            self.handler(conn, address, self)
        except Exception:  # noqa: BLE001 — one broken request never reaches the stream's stderr
            pass
        finally:
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.close()
            self._free.release()

    def shutdown(self) -> None:
        self._stop.set()
        self._stopped.wait(5)
        self._pool.shutdown(wait=False, cancel_futures=True)


class Guard:
    """The protection of a page that shows people's faces and words, for any Flask app on this server: it answers only
    Host names it knows (loopback, the bound address, IP literals, `hosts`, $AFFECTGPT_DASHBOARD_HOSTS), and off
    loopback only a caller holding the token (given once as ?token=, then kept in an HttpOnly SameSite=Strict cookie,
    or sent as a Bearer header). The dashboard and the annotation review page both use it."""

    def __init__(self, address: str, token_file: str | os.PathLike | None = None, hosts=(), open_paths=("/healthz",)):
        self.host, self.port, self.token = dashboard_settings(address, token_file)
        names = [*hosts, *os.environ.get(HOSTS_ENV, "").split(",")]
        self.hosts = {n.strip().lower().rstrip(".") for n in names if n.strip()} | set(LOOPBACK_NAMES)
        if self.host not in ("0.0.0.0", "::"):
            self.hosts.add(self.host.lower())
        self.cookie = hashlib.sha256(f"affectgpt-dashboard:{self.token}".encode()).hexdigest() if self.token else None
        self.open_paths = tuple(open_paths)

    def host_allowed(self, host: str) -> bool:
        """A Host header names this page: a known name, or an IP literal (a page whose origin is an IP
        address cannot rebind it to another machine)."""
        host = host.strip().lower()
        if host.startswith("["):
            name = host[1:host.find("]")] if "]" in host else ""
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        name = name.rstrip(".")
        if not name:
            return False
        if name in self.hosts:
            return True
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return False

    def authorized(self, request) -> bool:
        if self.token is None:
            return True
        given = request.cookies.get(COOKIE)
        if given is not None and hmac.compare_digest(given.encode(), self.cookie.encode()):
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), self.token.encode()):
            return True
        return False

    def install(self, app) -> None:
        """Check every request of `app` before it runs; no caching, framing, referrer or type sniffing after."""
        from flask import Response, redirect, request

        @app.before_request
        def guard():
            if not self.host_allowed(request.host):
                return Response("unknown host\n", 400, mimetype="text/plain")
            if request.path in self.open_paths or self.authorized(request):
                return None
            given = request.args.get("token")
            if given is not None and self.token and hmac.compare_digest(given.encode(), self.token.encode()):
                # the page takes the token once and keeps it in a cookie the page's own <img> and EventSource send;
                # the address bar and the history lose it
                rest = urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "token"])
                target = "/" + request.path.lstrip("/") + ("?" + rest if rest else "")  # never //elsewhere
                response = redirect(target, 303)
                response.set_cookie(COOKIE, self.cookie, httponly=True, samesite="Strict", path="/")
                return response
            return Response("a token is required: open this page once as /?token=...\n", 401, mimetype="text/plain",
                            headers={"WWW-Authenticate": "Bearer"})

        @app.after_request
        def headers(response):
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response


def serve_in_thread(host: str, port: int, app, name: str) -> "_Server":
    """`app` on the bounded server, in a daemon thread. → the server (its `port` is the bound one)."""
    try:
        server = _Server(host, port, app)
    except OSError as err:
        raise ServeError(f"--serve cannot listen on {host}:{port}: {err.strerror or err}") from None
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # no line per request: stderr is for the stream
    threading.Thread(target=server.serve_forever, daemon=True, name=name).start()
    return server


class Dashboard:
    def __init__(self, address: str, stream, health_timeout_s: float = 30.0, fps: float = 5.0,
                 token_file: str | os.PathLike | None = None, hosts=()):
        if not all(importlib.util.find_spec(m) for m in ("flask", "prometheus_client", "PIL")):
            raise ServeError("--serve needs its extra: pip install 'affectgpt-edge[serve]'")
        self.guard = Guard(address, token_file, hosts)
        self.host, self.port, self.token = self.guard.host, self.guard.port, self.guard.token
        self.stream = stream
        self.health_timeout_s = health_timeout_s
        self.fps = fps
        self.started = time.monotonic()
        self.last_answer: float | None = None
        self._frame = None  # (t, RGB array): the latest picture, replaced as frames pass
        self._jpeg = None
        self._picture_lock = threading.Lock()
        self._current = {"labels": [], "sentiment": "neutral", "people": []}
        self._scale = 1.0  # picture pixels per frame pixel (the records' boxes are in frame pixels)
        self.history: deque = deque(maxlen=60)
        self._summary: str | None = None
        self.ended = threading.Event()  # the stream is over: every feed ends
        self._subscribers: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._streams = threading.Semaphore(STREAMS)
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
        self._frame, self._scale = (t, rgb), rgb.shape[1] / frame.width

    def record(self, record: dict) -> None:
        outcome = "failed" if record.get("error") else "skipped" if record.get("skipped") else "answered"
        self.m_windows.labels(outcome).inc()
        if outcome != "failed":  # a silent window skipped under --vad skip is the stream working too
            self.last_answer = time.monotonic()
        if outcome == "answered":
            self._current = {"labels": record["labels"], "sentiment": record["sentiment"],
                             "span": (record["start"], record["end"]), "people": record.get("people") or []}
            self.m_people.set(len(self._current["people"]))
            timings = record.get("timings_ms", {})
            if "window_latency" in timings:
                self.m_latency.observe(timings["window_latency"] / 1e3)
            for stage in STAGES:
                if stage in timings:
                    self.m_stage.labels(stage).observe(timings[stage] / 1e3)
            self._signals(record)
        with self._lock:
            self.history.append(record)
        self._publish(record)

    def _signals(self, record: dict) -> None:
        """Each person's smoothed valence and arousal as gauges (only those in view: ids come and go), and the
        change events by kind."""
        seen = set()
        for i, person in enumerate(people_of(record)):
            affect = person.get("affect")
            if affect:
                pid = str(person.get("id", i) if record.get("people") else 0)
                seen.add(pid)
                self.m_valence.labels(pid).set(affect["smoothed"]["valence"])
                self.m_arousal.labels(pid).set(affect["smoothed"]["arousal"])
        for pid in self._in_view - seen:
            self.m_valence.remove(pid)
            self.m_arousal.remove(pid)
        self._in_view = seen
        for event in record.get("events") or ():
            self.m_events.labels(event["kind"]).inc()

    def summary(self, summary: dict) -> None:
        data = redact(json.dumps({"summary": summary}))  # input errors name their sources
        with self._lock:  # a feed that subscribes from now on gets it from here
            self._summary = data
        self._publish(data)
        self.ended.set()

    def _publish(self, item) -> None:
        data = item if isinstance(item, str) else json.dumps(item)
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
        self.m_valence = Gauge("affectgpt_valence", "Smoothed valence of each person in view, -1 to 1", ["person"],
                               registry=registry)
        self.m_arousal = Gauge("affectgpt_arousal", "Smoothed arousal of each person in view, -1 to 1", ["person"],
                               registry=registry)
        self.m_events = Counter("affectgpt_events", "Held changes of a person's emotion or sentiment", ["kind"],
                                registry=registry)
        self._in_view: set[str] = set()
        counts = self.stream.counts
        self.m_people = Gauge("affectgpt_people", "People answered in the last window", registry=registry)
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
            key = (id(latest), tuple(self._current["labels"]), self._current.get("span"), id(self._current))
            if self._jpeg is None or self._jpeg[0] != key:
                t, rgb = latest
                people, scale = self._current.get("people"), self._scale
                if people and len(people) > 1:  # each box where the face is now, not where the window saw it
                    box, people, scale = None, self._faces.people(t, rgb, people, self._scale), 1.0
                else:
                    box = self._faces.update(t, rgb)
                image = draw(rgb, box, self._current["labels"], self._current["sentiment"], self._current.get("span"),
                             people, scale)
                out = io.BytesIO()
                image.save(out, "JPEG", quality=75)
                self._jpeg = (key, out.getvalue())
            return self._jpeg[1]

    def host_allowed(self, host: str) -> bool:
        return self.guard.host_allowed(host)

    def _feed(self, make, mimetype: str, headers=None):
        """A long-lived response, counted against STREAMS; it ends when the stream does."""
        from flask import Response

        if not self._streams.acquire(blocking=False):
            return Response("too many viewers\n", 503, mimetype="text/plain", headers={"Retry-After": "5"})
        released = threading.Event()

        def release():
            if not released.is_set():
                released.set()
                self._streams.release()
        response = Response(make(), mimetype=mimetype, headers=headers)
        response.call_on_close(release)
        return response

    def _app(self):
        from flask import Flask, Response

        app = Flask("affectgpt-dashboard")

        self.guard.install(app)

        @app.get("/")
        def page():
            return Response(PAGE, mimetype="text/html")

        @app.get("/video.mjpeg")
        def video():
            def frames():
                yield b""  # the headers go out now, not with the first picture
                while not self.ended.is_set():
                    jpeg = self.picture()
                    if jpeg is not None:
                        yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode() + \
                            b"\r\n\r\n" + jpeg + b"\r\n"
                    self.ended.wait(1 / self.fps)
            return self._feed(frames, "multipart/x-mixed-replace; boundary=frame")

        @app.get("/events")
        def events():
            def stream():
                subscriber: queue.Queue = queue.Queue(maxsize=256)
                with self._lock:
                    backlog = list(self.history)[-20:]
                    self._subscribers.append(subscriber)
                    over = self._summary
                try:
                    yield "retry: 3000\n\n"  # the headers go out now: the client knows it is connected
                    for record in backlog:
                        yield f"data: {json.dumps(record)}\n\n"
                    if over is not None:  # the stream had already ended
                        yield f"data: {over}\n\n"
                        return
                    quiet = 0.0
                    while True:
                        try:
                            yield f"data: {subscriber.get(timeout=1)}\n\n"
                            quiet = 0.0
                        except queue.Empty:
                            if self.ended.is_set():
                                break
                            quiet += 1
                            if quiet >= 10:
                                yield ": keep-alive\n\n"
                                quiet = 0.0
                finally:
                    with self._lock:
                        self._subscribers.remove(subscriber)
            return self._feed(stream, "text/event-stream", {"Cache-Control": "no-cache"})

        @app.get("/metrics")
        def metrics():
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            return Response(generate_latest(self.registry), mimetype=CONTENT_TYPE_LATEST)

        @app.get("/healthz")
        def healthz():
            now = time.monotonic()
            since = now - (self.last_answer if self.last_answer is not None else self.started)
            ok = since <= self.health_timeout_s and not self.stream.failed.is_set()
            return Response(json.dumps({"status": "ok" if ok else "not ok"}), 200 if ok else 503,
                            mimetype="application/json")

        return app

    def start(self) -> "Dashboard":
        self._server = serve_in_thread(self.host, self.port, self.app, "dashboard")
        self.port = self._server.port
        print(f"dashboard: {self.url}" + (" (token required)" if self.token else ""), file=sys.stderr, flush=True)
        return self

    def close(self) -> None:
        self.ended.set()
        if self._server is not None:
            self._server.shutdown()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


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
 #people { margin-bottom: 12px; } #people div { font-size: 17px; }
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
  <div id="labels">…</div><div id="sentiment"></div><div id="people"></div>
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
  const affect = r.affect ? " · valence " + r.affect.smoothed.valence.toFixed(2) + ", arousal " + r.affect.smoothed.arousal.toFixed(2) : "";
  document.getElementById("sentiment").textContent = r.sentiment + " · window " + r.window + " (" + r.start.toFixed(1) + "–" + r.end.toFixed(1) + " s)" + affect;
  const people = document.getElementById("people");
  people.replaceChildren(...(r.people && r.people.length > 1 ? r.people : []).map((p) => {
    const row = document.createElement("div");
    row.className = p.sentiment;
    row.textContent = "#" + p.id + (p.primary ? " (largest)" : "") + ": " + (p.labels.length ? p.labels.join(", ") : "—")
      + (p.speaking ? " · speaking" : "");
    return row;
  }));
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
const events = new EventSource("/events");
events.onmessage = (e) => { const r = JSON.parse(e.data); show(r); if (r.summary) events.close(); };
</script>
</body></html>
"""
