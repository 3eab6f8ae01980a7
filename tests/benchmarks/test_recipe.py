"""The from-scratch recipe's own parts: its training options and shipping to the folder it is told."""

import json


def test_training_options_are_written_as_the_command_takes_them():
    from benchmarks.recipe import options

    assert options({"batch_size": 8, "lr": 3e-4}) == ["--batch-size", "8", "--lr", "0.0003"]


def test_ship_writes_where_it_is_told(tmp_path):
    from benchmarks.recipe import ship

    bundle, corpus, to = tmp_path / "bundle", tmp_path / "corpus", tmp_path / "shipped"
    bundle.mkdir()
    corpus.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"base_model": "gemma-3-270m-q4_k_m"}))
    rows = []
    for i, (emotion, face, kind) in enumerate([("happy", "happy", "consistent"), ("happy", "happy", "neutral"),
                                               ("sad", "neutral", "revealing"), ("angry", "angry", "neutral")]):
        (corpus / f"c{i}.mp4").write_bytes(b"clip %d" % i)
        rows.append({"path": f"c{i}.mp4", "emotion": emotion, "face_emotion": face, "voice_emotion": face,
                     "text_kind": kind, "subtitle": f"s{i}", "labels": [emotion]})
    ship(bundle, corpus, rows, to)
    assert (to / "bundle" / "manifest.json").is_file() and "Gemma Terms of Use" in (to / "bundle" / "NOTICE.md").read_text()
    samples = [json.loads(line) for line in (to / "samples" / "samples.jsonl").read_text().splitlines()]
    assert [s["file"] for s in samples] == ["angry.mp4", "happy.mp4"]  # the sad one hides its emotion: not a sample
    assert (to / "samples" / "happy.mp4").read_bytes() == b"clip 0"
