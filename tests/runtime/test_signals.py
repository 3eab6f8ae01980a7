"""Valence and arousal from the labels, smoothing with a time constant, and change events that hold."""

import io
import json
import math

import pytest

from runtime.affect_space import FAMILIES, WORDS, labels_affect, word_affect
from runtime.outputs import JsonLines, Readable
from runtime.sentiment import NEGATIVE, POSITIVE, word_sentiment
from runtime.signals import EventLines, Signals


def _record(window, labels, sentiment, hop=2.0, window_s=4.0, **extra):
    return {"window": window, "start": window * hop, "end": window * hop + window_s, "labels": labels,
            "sentiment": sentiment, **extra}


def test_the_table_is_on_the_circle_and_agrees_with_the_sentiment_lexicon():
    for word, (v, a, family) in WORDS.items():
        assert family in FAMILIES
        assert -1 <= v <= 1 and -1 <= a <= 1
        assert math.isclose(math.hypot(v, a), 1, abs_tol=1e-3) or (v, a) == (0, 0), word
        sign = word_sentiment(word)
        if sign and abs(v) > 0.1:  # a word the lexicon calls positive is not placed on the unpleasant half
            assert (v > 0) == (sign > 0), word
    assert set(POSITIVE | NEGATIVE) - set(WORDS) <= {"genius"}  # the lexicon's words have places
    assert WORDS["happy"][:2] == (1.0, 0.0) and WORDS["sad"][:2] == (-0.707, -0.707)
    assert WORDS["tired"][:2] == (0.0, -1.0) and WORDS["calm"][1] < 0 < WORDS["angry"][1]


def test_labels_average_and_unknown_words_fall_back_to_their_sentiment():
    assert labels_affect(["sad", "lonely"]) == (-0.707, -0.707, {"sad": 1.0})
    assert labels_affect([]) == (0.0, 0.0, {"neutral": 1.0})
    assert labels_affect(["happy", "sad"])[0] == pytest.approx((1 - 0.707) / 2, abs=1e-3)
    assert word_affect("a bit mad") == WORDS["mad"]  # the first word the table knows
    assert word_affect("genius") == (1.0, 0.0, None)  # the lexicon's sentiment, no family
    assert word_affect("zzz") is None and labels_affect(["zzz"]) == (0.0, 0.0, {"neutral": 1.0})


def test_smoothing_uses_the_time_constant():
    s = Signals(smooth_s=4.0, hold=1)
    s.update(_record(0, ["happy"], "positive"))
    r = _record(1, ["sad"], "negative")
    s.update(r)
    w = 1 - math.exp(-2.0 / 4.0)  # 2 s after the last answer
    assert r["affect"]["smoothed"]["valence"] == pytest.approx(1 + w * (-0.707 - 1), abs=1e-3)
    assert r["affect"]["valence"] == -0.707  # the window's own value stays raw
    off = Signals(smooth_s=0, hold=1)
    off.update(_record(0, ["happy"], "positive"))
    r = _record(1, ["sad"], "negative")
    off.update(r)
    assert r["affect"]["smoothed"] == {"valence": -0.707, "arousal": -0.707}


def test_an_event_only_when_the_new_state_holds():
    s = Signals(smooth_s=0, hold=2)
    seq = [["sad"], ["sad"], ["happy"], ["sad"], ["happy"], ["happy"], ["happy"]]
    events = [s.update(_record(i, labels, "negative" if labels == ["sad"] else "positive"))
              for i, labels in enumerate(seq)]
    emotion = [[(e["from"], e["to"], e["window"]) for e in batch if e["kind"] == "emotion"] for batch in events]
    assert emotion == [[], [(None, "sad", 1)], [], [], [], [("sad", "happy", 5)], []]  # the one-window blip: none
    first = events[5][0]
    assert first == {"person": 0, "kind": "emotion", "from": "sad", "to": "happy", "at": 14.0, "window": 5,
                     "start": 10.0, "end": 14.0}
    assert s.events == 4  # two states × (first state, one change)


def test_people_each_keep_their_own_state_and_the_primary_is_on_top():
    s = Signals(smooth_s=0, hold=1)
    people = lambda a, b: [{"id": 3, "labels": a, "sentiment": "positive", "primary": True},  # noqa: E731
                           {"id": 7, "labels": b, "sentiment": "negative", "primary": False}]
    s.update(_record(0, ["happy"], "positive", people=people(["happy"], ["angry"])))
    r = _record(1, ["happy"], "positive", people=people(["happy"], ["sad"]))
    events = s.update(r)
    assert [(e["person"], e["from"], e["to"]) for e in events if e["kind"] == "emotion"] == [(7, "angry", "sad")]
    assert r["affect"] is r["people"][0]["affect"] and r["people"][1]["affect"]["emotion"] == "sad"
    skipped = {"window": 2, "start": 4.0, "end": 8.0, "skipped": "silent"}
    assert s.update(skipped) == [] and "affect" not in skipped


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="smooth"):
        Signals(smooth_s=-1)
    with pytest.raises(ValueError, match="hold"):
        Signals(hold=0)


def test_events_are_their_own_json_lines_and_readable_lines():
    s = Signals(smooth_s=0, hold=1)
    out = io.StringIO()
    writer = EventLines(JsonLines(out))
    for i, labels in enumerate((["sad"], ["happy"])):
        r = _record(i, labels, "negative" if i == 0 else "positive")
        s.record(r)
        writer.window(r)
    writer.summary({"windows": 2})
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert "events" not in lines[0] and lines[0]["affect"]["emotion"] == "sad"
    assert [x["event"]["to"] for x in lines if "event" in x] == ["sad", "negative", "happy", "positive"]
    assert lines[-1] == {"summary": {"windows": 2}}
    text = io.StringIO()
    Readable(text).event({"person": 0, "kind": "emotion", "from": "sad", "to": "happy", "at": 14.0})
    assert text.getvalue() == "[00:14.0] person 0: emotion sad → happy\n"

    class Plain:  # a writer that knows no events gets them inside the record
        def __init__(self):
            self.seen = []

        def window(self, record):
            self.seen.append(record)

    plain = Plain()
    EventLines(plain).window({"window": 0, "events": [{"to": "sad"}]})
    assert plain.seen == [{"window": 0, "events": [{"to": "sad"}]}]


def test_command_line_options_reach_the_api():
    from runtime.stream.__main__ import api_keywords, parse_args

    keywords = api_keywords(parse_args(["--camera", "0", "--smooth", "0", "--hold", "3", "--mqtt", "h/t",
                                        "--mqtt-tls"]))
    assert keywords["smooth"] == 0 and keywords["hold"] == 3 and keywords["mqtt"] == "h/t" and keywords["mqtt_tls"]
    for bad in (["--smooth", "-1"], ["--hold", "0"]):
        with pytest.raises(SystemExit):
            parse_args(["--camera", "0", *bad])


def test_a_stream_carries_affect_and_events(bundle_f16, clip_path):
    """Through the API: every answered window has `affect`; the first held state is an event."""
    from runtime.api import Stream

    answers = list(Stream(str(clip_path), bundle=bundle_f16, smooth=0, hold=1, vad="off", max_windows=2))
    answered = [a for a in answers if not (a.error or a.skipped)]
    assert answered and all(set(a.affect) == {"valence", "arousal", "smoothed", "emotion", "sentiment"}
                            for a in answered)
    assert {e["kind"] for e in answered[0].events} == {"emotion", "sentiment"}
    assert answered[0].events[0]["from"] is None


def test_the_picture_says_which_window_the_answer_describes():
    """The caption band carries "window 12.0–16.0 s" at its right: an answer comes a window after the face it saw."""
    pytest.importorskip("PIL", reason="drawing needs the serve extra")
    import numpy as np

    from runtime.overlay import draw

    rgb = np.full((240, 480, 3), 90, np.uint8)
    plain = np.asarray(draw(rgb, None, ["sad"], "negative"))
    spanned = np.asarray(draw(rgb, None, ["sad"], "negative", span=(12.0, 16.0)))
    band = slice(240 - 24, 240)
    assert (plain[band, :240] == spanned[band, :240]).all()  # the labels where they were
    right = spanned[band, 300:]
    assert (right == 170).all(axis=-1).any() and not (plain[band, 300:] == 170).all(axis=-1).any()  # grey text


def test_metrics_carry_each_person_in_view_and_the_events(tmp_path, monkeypatch):
    pytest.importorskip("flask", reason="--serve needs the serve extra")
    from types import SimpleNamespace

    from prometheus_client import generate_latest

    from runtime.serve import Dashboard

    monkeypatch.delenv("AFFECTGPT_DASHBOARD_TOKEN", raising=False)
    stream = SimpleNamespace(counts={"dropped": 0}, readers=[])
    dashboard = Dashboard("127.0.0.1:0", stream)
    signals = Signals(smooth_s=0, hold=1)
    for i, people in enumerate(([{"id": 1, "labels": ["happy"], "sentiment": "positive", "primary": True},
                                 {"id": 2, "labels": ["sad"], "sentiment": "negative"}],
                                [{"id": 2, "labels": ["angry"], "sentiment": "negative", "primary": True}])):
        r = _record(i, people[0]["labels"], people[0]["sentiment"], people=people, timings_ms={})
        signals.record(r)
        dashboard.record(r)
    text = generate_latest(dashboard.registry).decode()
    assert 'affectgpt_valence{person="2"} -0.383' in text and 'affectgpt_arousal{person="2"} 0.924' in text
    assert 'person="1"' not in text  # out of view: no stale gauge
    assert 'affectgpt_events_total{kind="emotion"} 3.0' in text
