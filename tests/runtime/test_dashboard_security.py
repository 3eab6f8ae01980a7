"""The dashboard shows a camera picture and what people say: Host allow-list, token and cookie, a bounded
server that outlives idle connections, feeds that end with the stream, a /healthz that says only ok / not ok.
Fast: Flask's test client and a real server in this process, with a stand-in for the stream."""

import http.client
import json
import socket
import threading
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("flask", reason="--serve needs the serve extra")

from runtime.serve import COOKIE, Dashboard, ServeError, dashboard_settings  # noqa: E402

TOKEN = "0123456789abcdef0123"


def fake_stream():
    return SimpleNamespace(counts={"dropped": 0, "answered": 0}, readers=[], failed=threading.Event())


@pytest.fixture(autouse=True)
def _no_env_token(monkeypatch):
    monkeypatch.delenv("AFFECTGPT_DASHBOARD_TOKEN", raising=False)
    monkeypatch.delenv("AFFECTGPT_DASHBOARD_HOSTS", raising=False)


def client(board, host="127.0.0.1:8080"):
    return board.app.test_client(), {"Host": host}


def test_a_foreign_host_is_refused_dns_rebinding():
    board = Dashboard("127.0.0.1:8080", fake_stream())
    c, _ = client(board)
    for host in ("evil.example:8080", "attacker.test", "localhost.evil.example"):
        assert c.get("/", headers={"Host": host}).status_code == 400, host
        assert c.get("/metrics", headers={"Host": host}).status_code == 400, host
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "192.168.1.20:8080", "LOCALHOST"):
        assert c.get("/", headers={"Host": host}).status_code == 200, host


def test_names_given_by_option_or_environment_are_allowed(monkeypatch):
    monkeypatch.setenv("AFFECTGPT_DASHBOARD_HOSTS", "kiosk.lan, car-01.local")
    board = Dashboard("127.0.0.1:8080", fake_stream(), hosts=["review.example"])
    c, _ = client(board)
    for host in ("kiosk.lan:8080", "car-01.local", "review.example:80"):
        assert c.get("/", headers={"Host": host}).status_code == 200, host
    assert c.get("/", headers={"Host": "other.lan"}).status_code == 400


def test_off_loopback_a_token_is_required_and_never_taken_from_the_command_line(tmp_path, monkeypatch):
    with pytest.raises(ServeError, match="AFFECTGPT_DASHBOARD_TOKEN"):
        dashboard_settings("0.0.0.0:8080")
    with pytest.raises(ServeError, match="token"):
        Dashboard("192.0.2.5:8080", fake_stream())
    assert dashboard_settings("127.0.0.1:8080")[2] is None and dashboard_settings("localhost:1")[2] is None
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(ServeError, match="at least"):
        dashboard_settings("0.0.0.0:8080", short)
    with pytest.raises(ServeError, match="cannot read"):
        dashboard_settings("0.0.0.0:8080", tmp_path / "missing")
    good = tmp_path / "token"
    good.write_text(TOKEN + "\n")
    assert dashboard_settings("0.0.0.0:8080", good)[2] == TOKEN
    monkeypatch.setenv("AFFECTGPT_DASHBOARD_TOKEN", TOKEN)
    assert dashboard_settings("0.0.0.0:8080")[2] == TOKEN


def test_the_cli_refuses_a_lan_dashboard_without_a_token_in_one_line():
    from tests.conftest import run_cli

    result = run_cli("runtime.stream", "--video", "runtime/demo/samples/happy.mp4", "--serve", "0.0.0.0:0",
                     env={"AFFECTGPT_DASHBOARD_TOKEN": ""})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "token" in lines[0] and "Traceback" not in result.stderr


def test_the_token_is_taken_once_and_kept_in_a_strict_httponly_cookie(monkeypatch):
    monkeypatch.setenv("AFFECTGPT_DASHBOARD_TOKEN", TOKEN)
    board = Dashboard("0.0.0.0:8080", fake_stream())
    c, h = client(board, "192.168.1.20:8080")
    for path in ("/", "/video.mjpeg", "/events", "/metrics"):
        assert c.get(path, headers=h).status_code == 401, path
    assert c.get("/?token=wrong-token-wrong-token", headers=h).status_code == 401
    first = c.get(f"/?token={TOKEN}", headers=h)
    assert first.status_code == 303 and first.headers["Location"].endswith("/")  # the address bar loses it
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(COOKIE + "=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    assert c.get("/", headers=h).status_code == 200  # the test client keeps the cookie, as a browser does
    assert c.get("/metrics", headers=h).status_code == 200
    bare = board.app.test_client()
    assert bare.get("/metrics", headers={**h, "Authorization": f"Bearer {TOKEN}"}).status_code == 200  # a scraper
    assert bare.get("/metrics", headers={**h, "Authorization": "Bearer nope"}).status_code == 401


def test_healthz_is_open_and_says_only_ok_or_not_ok(monkeypatch):
    monkeypatch.setenv("AFFECTGPT_DASHBOARD_TOKEN", TOKEN)
    stream = fake_stream()
    board = Dashboard("0.0.0.0:8080", stream, health_timeout_s=30)
    c, h = client(board, "192.168.1.20")
    ok = c.get("/healthz", headers=h)
    assert ok.status_code == 200 and ok.get_json() == {"status": "ok"}
    stream.failed.set()
    bad = c.get("/healthz", headers=h)
    assert bad.status_code == 503 and bad.get_json() == {"status": "not ok"}
    assert c.get("/healthz", headers={"Host": "evil.example"}).status_code == 400


def test_every_feed_ends_when_the_stream_ends():
    board = Dashboard("127.0.0.1:8080", fake_stream())
    c, h = client(board)
    results = {}

    def read(path):
        response = c.get(path, headers=h, buffered=False)
        results[path] = b"".join(response.response)
        response.close()
    readers = [threading.Thread(target=read, args=(p,), daemon=True) for p in ("/events", "/video.mjpeg")]
    for t in readers:
        t.start()
    time.sleep(0.5)
    board.record({"window": 0, "start": 0, "end": 4, "labels": ["happy"], "sentiment": "positive", "timings_ms": {}})
    board.summary({"answered": 1})
    for t in readers:
        t.join(timeout=5)
        assert not t.is_alive(), "a feed outlived the stream"
    assert b'"summary"' in results["/events"] and b'"happy"' in results["/events"]
    late = c.get("/events", headers=h)  # a viewer that comes after the end gets the story and the summary, then the end
    assert late.status_code == 200 and b'"summary"' in late.data


def _served():
    board = Dashboard("127.0.0.1:0", fake_stream())
    return board.start()


def _get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_200_idle_connections_neither_block_healthz_nor_grow_200_threads():
    board = _served()
    try:
        before = threading.active_count()
        idle = []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", board.port), timeout=5)
            idle.append(s)
        time.sleep(0.5)
        started = time.monotonic()
        status, body = _get(board.port, "/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        assert time.monotonic() - started < 2
        assert threading.active_count() - before <= 20
        # half a request each (slowloris): still no thread apiece, and /healthz still answers
        for s in idle[:100]:
            s.sendall(b"GET / HT")
        time.sleep(0.5)
        assert _get(board.port, "/healthz")[0] == 200
        assert threading.active_count() - before <= 20
    finally:
        for s in idle:
            s.close()
        board.close()


def test_beyond_the_cap_a_feed_is_refused_with_503_and_the_rest_still_answers(monkeypatch):
    import runtime.serve as serve

    monkeypatch.setattr(serve, "STREAMS", 2)
    board = _served()
    feeds = []
    try:
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=5)
            conn.request("GET", "/events")
            assert conn.getresponse().status == 200
            feeds.append(conn)
        assert _get(board.port, "/events")[0] == 503
        assert _get(board.port, "/healthz")[0] == 200
    finally:
        board.close()  # ends the feeds: their connections see the end of the response
        for conn in feeds:
            conn.close()


def test_an_idle_connection_is_closed_after_the_timeout(monkeypatch):
    import runtime.serve as serve

    monkeypatch.setattr(serve, "IDLE_S", 0.5)
    board = _served()
    try:
        s = socket.create_connection(("127.0.0.1", board.port), timeout=5)
        assert s.recv(1) == b""  # closed by the server, not left hanging
        s.close()
    finally:
        board.close()


def test_with_every_worker_busy_the_server_answers_503_at_once(monkeypatch):
    import runtime.serve as serve

    monkeypatch.setattr(serve, "WORKERS", 2)
    board = _served()
    feeds = []
    try:
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=5)
            conn.request("GET", "/video.mjpeg")
            assert conn.getresponse().status == 200
            feeds.append(conn)
        started = time.monotonic()
        assert _get(board.port, "/healthz")[0] == 503 and time.monotonic() - started < 2
    finally:
        board.close()
        for conn in feeds:
            conn.close()


def test_the_token_redirect_stays_on_the_dashboard(monkeypatch):
    monkeypatch.setenv("AFFECTGPT_DASHBOARD_TOKEN", TOKEN)
    board = Dashboard("127.0.0.1:8080", fake_stream())
    c, h = client(board)
    response = c.get(f"//evil.example/?token={TOKEN}&a=b%20c", headers=h)
    assert response.status_code in (303, 404)
    if response.status_code == 303:
        assert response.headers["Location"].startswith("/") and not response.headers["Location"].startswith("//")
    response = board.app.test_client().get(f"/metrics?token={TOKEN}&a=b%20c", headers=h)
    assert response.status_code == 303 and response.headers["Location"] == "/metrics?a=b+c"
