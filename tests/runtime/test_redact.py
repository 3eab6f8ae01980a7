"""Credentials in a source URL never reach stderr, the JSON summary or the dashboard's events."""

import json
import socket
import threading

import pytest

from runtime.redact import redact
from tests.conftest import run_cli


@pytest.mark.parametrize("text, expected", [
    ("rtsp://admin:hunter2@192.0.2.10:554/stream", "rtsp://***@192.0.2.10:554/stream"),
    ("cannot open 'rtsps://me@cam.local/live': refused", "cannot open 'rtsps://***@cam.local/live': refused"),
    ("rtsp://u:p@ss@cam/x", "rtsp://***@cam/x"),  # FFmpeg takes the last @ before the path
    ("srt://cam:9000?mode=caller&passphrase=s3cret&latency=200", "srt://cam:9000?mode=caller&passphrase=***&latency=200"),
    ("http://cam/snap?user=bob&Password=x&token=abc#frag", "http://cam/snap?user=***&Password=***&token=***#frag"),
    ("rtsp://cam.local/stream", "rtsp://cam.local/stream"),
    ("/recordings/drive@home.mp4", "/recordings/drive@home.mp4"),
    ("no url here", "no url here"),
])
def test_redact_masks_credentials_and_keeps_the_rest(text, expected):
    assert redact(text) == expected


def test_a_source_names_itself_without_its_credentials():
    from runtime.sources import SourceError, generic, network, open_container

    spec = network("rtsp://admin:hunter2@127.0.0.1:9/stream?token=abc")
    assert "hunter2" not in spec.describe() and "abc" not in spec.describe() and "127.0.0.1:9/stream" in spec.describe()
    assert "hunter2" not in generic("http://u:hunter2@127.0.0.1:9/x", None).describe()
    with pytest.raises(SourceError) as err:
        network("file://u:hunter2@x")
    assert "hunter2" not in str(err.value)
    with pytest.raises(SourceError) as err:  # FFmpeg's message quotes the URL as given
        open_container(spec, timeout_s=2)
    assert "hunter2" not in str(err.value) and "abc" not in str(err.value)


@pytest.fixture
def dropping_server():
    """A TCP port that accepts and closes at once: an RTSP camera that fails after the connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_the_cli_never_prints_a_camera_password(dropping_server):
    result = run_cli("runtime.stream", "--url", f"rtsp://admin:hunter2@127.0.0.1:{dropping_server}/live?token=t0ps3cret",
                     timeout=60)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "hunter2" not in out and "t0ps3cret" not in out and "admin" not in out, out
    assert "***@127.0.0.1" in out


def test_the_dashboard_never_pushes_credentials():
    pytest.importorskip("flask")
    from tests.runtime.test_dashboard_security import fake_stream
    from runtime.serve import Dashboard

    board = Dashboard("127.0.0.1:0", fake_stream())
    seen = []
    board._subscribers.append(type("Q", (), {"put_nowait": staticmethod(seen.append)})())
    board.summary({"input_errors": ["rtsp://admin:hunter2@cam/x: Input/output error"], "inputs_died": ["rtsp://a:b@c/"]})
    assert seen and "hunter2" not in seen[0] and ":b@" not in seen[0]
    assert json.loads(seen[0])["summary"]["inputs_died"] == ["rtsp://***@c/"]
