"""`--serve`: the dashboard in a real headless Chromium (Debian's, driven by Playwright), its feeds read as an
integrator would, and `--annotate`'s copy of a recording."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli

SAMPLE = ROOT / "runtime" / "demo" / "samples" / "happy.mp4"
SCREENSHOT = Path(os.environ.get("AFFECTGPT_SCREENSHOT", "")) if os.environ.get("AFFECTGPT_SCREENSHOT") else None


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TOKEN = "a-dashboard-token-for-the-test"


def _serve(env=None):
    pytest.importorskip("flask", reason="--serve needs the serve extra")
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "runtime.stream", "--video", str(SAMPLE), "--loop", "--realtime",
                             "--serve", f"127.0.0.1:{port}", "--max-new-tokens", "24"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(proc.stderr.read().decode())
            time.sleep(0.3)
    return url, proc


@pytest.fixture
def served():
    url, proc = _serve({"AFFECTGPT_DASHBOARD_TOKEN": ""})
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def served_with_token():
    url, proc = _serve({"AFFECTGPT_DASHBOARD_TOKEN": TOKEN})
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_the_page_shows_the_picture_and_the_answers_in_a_real_browser(served):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 620})
        page.goto(served + "/")
        page.wait_for_function("document.getElementById('labels').textContent.length > 2", timeout=60_000)
        labels = page.inner_text("#labels")
        assert labels and labels != "…"
        sample = """() => { const img = document.getElementById('video');
            if (!img.naturalWidth) return null;
            const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data; let s = 0;
            for (let i = 0; i < d.length; i += 7) s = (s * 31 + d[i]) % 1000000007; return s; }"""
        page.wait_for_function("document.getElementById('video').naturalWidth > 0", timeout=30_000)
        first = page.evaluate(sample)
        changed = False
        for _ in range(20):  # the picture is live: it changes as the video plays
            page.wait_for_timeout(500)
            if page.evaluate(sample) != first:
                changed = True
                break
        assert changed, "the picture did not update"
        assert page.locator("#timeline div").count() >= 1 and page.locator("#stages tr").count() >= 5
        if SCREENSHOT:
            page.screenshot(path=str(SCREENSHOT))
        browser.close()


@pytest.mark.slow
def test_a_browser_given_the_token_once_sees_the_picture_and_the_answers(served_with_token):
    """The token comes once in the address; the cookie carries it for the <img> and the EventSource."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        stranger = browser.new_page()
        assert stranger.goto(served_with_token + "/").status == 401
        page = browser.new_page()
        page.goto(served_with_token + "/?token=" + TOKEN)
        assert "token" not in page.url
        page.wait_for_function("document.getElementById('labels').textContent.length > 2", timeout=60_000)
        page.wait_for_function("document.getElementById('video').naturalWidth > 0", timeout=30_000)
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script on the page can read it
        browser.close()


def test_events_metrics_and_health_as_an_integrator_reads_them(served):
    with urllib.request.urlopen(served + "/events", timeout=60) as events:
        line = b""
        while not line.startswith(b"data: "):
            line = events.readline().strip()
    record = json.loads(line[len(b"data: "):])
    assert {"window", "labels", "sentiment", "timings_ms"} <= set(record)
    metrics = urllib.request.urlopen(served + "/metrics", timeout=10).read().decode()
    assert "affectgpt_window_latency_seconds_bucket" in metrics and 'affectgpt_stage_seconds_bucket{le="0.1",stage="vision"}' in metrics
    assert 'affectgpt_windows_total{outcome="answered"}' in metrics and "affectgpt_dropped_windows" in metrics
    health = json.loads(urllib.request.urlopen(served + "/healthz", timeout=10).read())
    assert health == {"status": "ok"}  # nothing more: it is open to anyone who can reach the port


def test_annotate_writes_a_playable_copy_with_the_answers_drawn(tmp_path):
    pytest.importorskip("PIL", reason="--annotate needs the serve extra (Pillow)")
    import av

    out = tmp_path / "annotated.mp4"
    result = run_cli("runtime.stream", "--video", str(SAMPLE), "--annotate", str(out), "--max-new-tokens", "24")
    assert result.returncode == 0, result.stderr

    def read(path):
        with av.open(str(path)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
            return frames, c.duration / av.time_base, bool(c.streams.audio)

    original, seconds, has_audio = read(SAMPLE)
    annotated, annotated_seconds, annotated_audio = read(out)
    assert len(annotated) == len(original) and abs(annotated_seconds - seconds) < 0.2
    assert annotated_audio == has_audio
    bottom = slice(int(0.8 * original[0].shape[0]), None)  # the caption band
    assert np.abs(annotated[-1][bottom].astype(int) - original[-1][bottom].astype(int)).mean() > 10


def test_annotate_needs_a_file(tmp_path):
    result = run_cli("runtime.stream", "--input", "testsrc", "--format", "lavfi", "--annotate", str(tmp_path / "x.mp4"))
    assert result.returncode == 2 and "--video" in result.stderr


def test_the_readme_python_example_runs():
    """The README's Python example, as written there, on the shipped demo."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2].endswith("windows answered") and int(lines[-2].split()[0]) >= 1
    assert "[" in lines[-1] and "ms" in lines[-1]
