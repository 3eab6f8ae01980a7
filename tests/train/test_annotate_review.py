"""The review page in Debian's Chromium: disagreements first, accept / edit / reject with the keyboard, each decision
on disk as it is made; and the dashboard's protection."""

import csv
import json
import shutil
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT

SAMPLES = ROOT / "runtime" / "demo" / "samples"


def _record(name, labels, sentiment, votes, dropped=()):
    return {"name": name, "source": f"{name}.mp4", "description": f"In the video, {name}. Considering all the clues, "
            f"the character's emotional state is {', '.join(labels)}.", "labels": labels, "sentiment": sentiment,
            "votes": votes, "filters": [{"filter": f, "passed": False, "reason": f"{f} failed"} for f in dropped],
            "dropped_by": list(dropped), "kept": not dropped, "low_level_kept": True,
            "clues": {"visual": {"phrases": ["smiles from 0.5 s"]},
                      "acoustic": {"phrases": ["a high-pitched voice"], "words": f"words of {name}"}}}


@pytest.fixture
def dataset(tmp_path):
    from train.annotate.dataset import write_json, write_tables

    out = tmp_path / "dataset"
    (out / "video").mkdir(parents=True)
    records = [_record("happy", ["happy"], "positive", {"face": "positive", "text": "positive"}),
               _record("sad", ["sad"], "negative", {"face": "positive", "text": "negative"}, dropped=("consensus",)),
               _record("calm", ["content"], "positive", {"face": "positive", "text": "positive"})]
    for r in records:
        shutil.copy(SAMPLES / f"{r['name']}.mp4", out / "video" / f"{r['name']}.mp4")
        write_json(out / "clips" / f"{r['name']}.json", r)
    write_tables(out)
    return out


def test_review_in_a_real_browser_saves_each_decision_as_made(dataset):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    from train.annotate.review import ReviewServer

    server = ReviewServer(dataset, "127.0.0.1:0").start()
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_function("document.getElementById('name').textContent.length > 0", timeout=30_000)
            assert page.inner_text("#name") == "sad"  # the disputed clip first
            assert "consensus failed" in page.inner_text("#filters") and "face: positive" in page.inner_text("#votes")
            page.wait_for_function("document.getElementById('video').readyState >= 1", timeout=30_000)
            page.keyboard.press("r")
            page.wait_for_function("document.getElementById('name').textContent === 'calm'", timeout=10_000)
            assert json.loads((dataset / "review" / "sad.json").read_text())["decision"] == "reject"
            page.keyboard.press("e")
            page.fill("#labels", "relieved, calm")
            page.keyboard.press("Enter")
            page.wait_for_function("document.getElementById('name').textContent === 'happy'", timeout=10_000)
            edited = json.loads((dataset / "review" / "calm.json").read_text())
            assert edited["decision"] == "edit" and edited["labels"] == ["relieved", "calm"]
            page.keyboard.press("a")
            page.wait_for_function("document.getElementById('decision').textContent.includes('accept')", timeout=10_000)
            browser.close()
    finally:
        server.close()
    with open(dataset / "track2_train_reviewed.csv", newline="") as f:
        assert {r["name"]: r["openset"] for r in csv.DictReader(f)} == {"calm": "[relieved, calm]", "happy": "[happy]"}


def test_review_has_the_dashboards_protection(dataset, tmp_path, monkeypatch):
    from runtime.serve import ServeError
    from train.annotate.review import ReviewServer

    monkeypatch.delenv("AFFECTGPT_DASHBOARD_TOKEN", raising=False)
    with pytest.raises(ServeError, match="token"):
        ReviewServer(dataset, "0.0.0.0:0")
    token = "0123456789abcdef0123"
    (tmp_path / "token").write_text(token)
    server = ReviewServer(dataset, "0.0.0.0:0", token_file=tmp_path / "token").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        def status(path, headers=None, data=None):
            req = urllib.request.Request(base + path, headers=headers or {}, data=data)
            try:
                return urllib.request.urlopen(req, timeout=10).status
            except urllib.error.HTTPError as err:
                return err.code
        assert status("/api/clips") == 401
        assert status("/api/clips", {"Host": "evil.example"}) == 400
        auth = {"Authorization": f"Bearer {token}"}
        assert status("/api/clips", auth) == 200
        assert status("/media/..%2Fclips%2Fsad", auth) == 404
        assert status("/api/decision/sad", {**auth, "Content-Type": "text/plain"}, b"decision=accept") == 415
        assert not (dataset / "review").exists()
    finally:
        server.close()
