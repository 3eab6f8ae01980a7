"""The human-assisted step: a local page that plays each annotated clip with its clues, description, labels and
votes; the reviewer accepts, edits or rejects it with the keyboard, and each decision is written atomically as it is
made (DATASET/review/<name>.json, then the CSVs again), so a crash or Ctrl-C loses nothing. Disagreements come first:
clips a filter dropped, or whose voters do not all share the description's sentiment.

It shows people's faces and words, so it has the dashboard's protection (runtime/serve.py's Guard): loopback by
default, a Host allow-list, a token off loopback. Decisions are posted as JSON, which a page of another origin cannot
send here without a CORS preflight this server never grants.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

from runtime.serve import Guard, ServeError, serve_in_thread
from train.annotate import dataset as ds
from train.annotate.clues import AnnotateError

DECISIONS = ("accept", "edit", "reject")


def disagreement(record: dict) -> int:
    """How much the evidence disputes a clip: a filter that dropped it, and each voter against the description."""
    return len(record.get("dropped_by", [])) + sum(
        v is not None and v != record.get("sentiment") for v in record.get("votes", {}).values())


def queue(records: dict[str, dict]) -> list[str]:
    """Names in review order: most disputed first, then by name."""
    return sorted(records, key=lambda n: (-disagreement(records[n]), n))


def summary(record: dict, decision: dict | None) -> dict:
    clues = record.get("clues", {})
    return {"name": record["name"], "description": record.get("description", record.get("error", "")),
            "labels": record.get("labels", []), "sentiment": record.get("sentiment"), "votes": record.get("votes", {}),
            "filters": record.get("filters", []), "kept": record.get("kept", False),
            "visual": clues.get("visual", {}).get("phrases", []), "acoustic": clues.get("acoustic", {}).get("phrases", []),
            "words": clues.get("acoustic", {}).get("words", ""), "disagreement": disagreement(record),
            "decision": decision}


class ReviewServer:
    def __init__(self, dataset: str | Path, address: str = "8766", token_file=None, hosts=()):
        if not importlib.util.find_spec("flask"):
            raise ServeError("the review page needs Flask: pip install 'affectgpt-edge[serve]'")
        self.dataset = Path(dataset)
        if not (self.dataset / "clips").is_dir():
            raise AnnotateError(f"{self.dataset} holds no annotated clips (clips/*.json): run python -m train.annotate "
                                "--videos DIR --out DATASET first")
        self.guard = Guard(address, token_file, hosts, open_paths=())
        self.host, self.port = self.guard.host, self.guard.port
        self.lock = threading.Lock()  # one decision written at a time, tables included
        self.app = self._app()
        self._server = None

    def _app(self):
        from flask import Flask, Response, abort, jsonify, request, send_file

        app = Flask("affectgpt-review")
        self.guard.install(app)

        @app.get("/")
        def page():
            return Response(PAGE, mimetype="text/html")

        @app.get("/api/clips")
        def clips():
            records, decided = ds.records(self.dataset), ds.decisions(self.dataset)
            return jsonify([summary(records[n], decided.get(n)) for n in queue(records)])

        @app.get("/media/<name>")
        def media(name):
            records = ds.records(self.dataset)
            if name not in records:  # only names the dataset holds: no path from the request reaches the disk
                abort(404)
            found = [p for p in (self.dataset / "video").glob(f"{name}.*") if p.stem == name]
            if not found:
                abort(404)
            return send_file(found[0], conditional=True)

        @app.post("/api/decision/<name>")
        def decide(name):
            if not request.is_json:
                return Response("JSON only\n", 415, mimetype="text/plain")
            body = request.get_json(silent=True) or {}
            records = ds.records(self.dataset)
            if name not in records or body.get("decision") not in DECISIONS:
                return Response("unknown clip or decision\n", 400, mimetype="text/plain")
            decision = {"decision": body["decision"], "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            if body["decision"] == "edit":
                labels = body.get("labels", records[name].get("labels", []))
                if isinstance(labels, str):
                    labels = [w.strip().lower() for w in labels.strip("[]").split(",") if w.strip()]
                decision["labels"] = [str(w)[:40] for w in labels][:8]
                decision["description"] = str(body.get("description", records[name].get("description", "")))[:4000]
            with self.lock:
                ds.write_json(ds.review_path(self.dataset, name), decision)
                ds.write_tables(self.dataset)
            return jsonify(decision)

        return app

    def start(self) -> "ReviewServer":
        self._server = serve_in_thread(self.host, self.port, self.app, "review")
        self.port = self._server.port
        print(f"review: {self.url}" + (" (token required)" if self.guard.token else ""), file=sys.stderr, flush=True)
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def serve(dataset: Path, address: str, token_file=None, hosts=()) -> int:
    server = ReviewServer(dataset, address, token_file, hosts).start()
    try:
        while True:
            time.sleep(3600)
    finally:
        server.close()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Annotation review</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 0; background: #161616; color: #eee; }
 main { display: grid; grid-template-columns: minmax(320px, 1fr) minmax(320px, 1fr); gap: 16px; padding: 16px; }
 video { width: 100%; background: #000; border-radius: 6px; }
 h2 { margin: 0 0 6px; font-size: 18px; } .muted { color: #999; } ul { margin: 4px 0 10px; padding-left: 18px; }
 .positive { color: #2ecc71; } .negative { color: #e74c3c; } .neutral { color: #ddd; }
 .bad { color: #e67e22; } .decision { font-weight: bold; } textarea, input { width: 100%; background: #222; color: #eee; border: 1px solid #444; }
 kbd { background: #333; padding: 1px 5px; border-radius: 3px; }
</style></head><body>
<main>
 <section><video id="video" controls autoplay muted></video>
  <p class="muted"><kbd>a</kbd> accept · <kbd>e</kbd> edit (then <kbd>Enter</kbd>) · <kbd>r</kbd> reject ·
   <kbd>j</kbd>/<kbd>k</kbd> next / previous · <kbd>space</kbd> play</p>
  <div id="position" class="muted"></div><div id="decision" class="decision"></div></section>
 <section>
  <h2 id="name"></h2>
  <div>Face: <ul id="visual"></ul></div><div>Voice: <ul id="acoustic"></ul></div>
  <div>Words: <span id="words"></span></div>
  <h2>Description</h2><textarea id="description" rows="6"></textarea>
  <h2>Labels</h2><input id="labels"><div id="sentiment"></div>
  <h2>Votes</h2><ul id="votes"></ul><h2>Filters</h2><ul id="filters"></ul>
 </section>
</main>
<script>
let clips = [], i = 0, editing = false;
const $ = id => document.getElementById(id);
function list(el, items) { el.replaceChildren(...items.map(t => { const li = document.createElement("li"); li.textContent = t; return li; })); }
function show() {
  const c = clips[i]; if (!c) { $("name").textContent = "nothing to review"; return; }
  $("name").textContent = c.name; $("position").textContent = (i + 1) + " of " + clips.length + " · disagreement " + c.disagreement;
  $("video").src = "/media/" + encodeURIComponent(c.name);
  list($("visual"), c.visual); list($("acoustic"), c.acoustic); $("words").textContent = c.words || "–";
  const d = c.decision && c.decision.decision === "edit" ? c.decision : c;
  $("description").value = d.description; $("labels").value = d.labels.join(", ");
  $("sentiment").textContent = "sentiment: " + c.sentiment; $("sentiment").className = c.sentiment;
  list($("votes"), Object.entries(c.votes).map(([k, v]) => k + ": " + (v || "abstains")));
  list($("filters"), c.filters.map(f => (f.passed ? "✓ " : "✗ ") + f.filter + ": " + f.reason));
  $("decision").textContent = c.decision ? "decided: " + c.decision.decision : "not reviewed";
  editing = false; $("description").blur(); $("labels").blur();
}
async function decide(decision) {
  const c = clips[i]; const body = {decision};
  if (decision === "edit") { body.labels = $("labels").value; body.description = $("description").value; }
  const r = await fetch("/api/decision/" + encodeURIComponent(c.name), {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  if (!r.ok) { $("decision").textContent = "not saved: " + r.status; return; }
  c.decision = await r.json(); if (decision === "edit") { c.labels = c.decision.labels; }
  if (i < clips.length - 1) { i++; } show();
}
document.addEventListener("keydown", ev => {
  if (editing) { if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); decide("edit"); } else if (ev.key === "Escape") { show(); } return; }
  if (ev.key === "a") decide("accept");
  else if (ev.key === "r") decide("reject");
  else if (ev.key === "e") { ev.preventDefault(); editing = true; $("labels").focus(); }
  else if (ev.key === "j" || ev.key === "ArrowDown") { if (i < clips.length - 1) { i++; show(); } }
  else if (ev.key === "k" || ev.key === "ArrowUp") { if (i > 0) { i--; show(); } }
  else if (ev.key === " ") { ev.preventDefault(); const v = $("video"); v.paused ? v.play() : v.pause(); }
});
fetch("/api/clips").then(r => r.json()).then(data => { clips = data; i = Math.max(0, clips.findIndex(c => !c.decision)); show(); });
</script></body></html>
"""
