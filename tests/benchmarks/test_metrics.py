"""Each metric on small hand-computed cases, edge cases included."""

import pytest

from benchmarks.metrics import benchmark_mean, best_epoch, hit_rate, labels_to_sentiment, ov_scores, sentiment_f1


def test_hit_rate_skips_ground_truth_that_maps_to_nothing(wheel):
    gt = {"a": "happy", "b": "happy", "c": "neutral"}
    pred = {"a": ["happy", "excited"], "b": ["sad"], "c": ["happy"]}
    result = hit_rate(wheel, gt, pred)
    assert result["score"] == pytest.approx(0.5)
    assert result["n"] == [2] * 5  # the neutral sample is skipped on every wheel


def test_ov_f_from_averaged_p_and_r_with_empty_prediction(wheel):
    gt = {"a": ["happy"], "b": ["happy"], "c": ["neutral"]}
    pred = {"a": ["happy", "sad"], "b": [], "c": ["happy"]}
    result = ov_scores(wheel, gt, pred)
    # a: P = 1/2, R = 1; b: empty prediction, P = R = 0; c: skipped. P = .25, R = .5, F = 2·.25·.5/.75
    assert result["precision"] == pytest.approx(0.25)
    assert result["recall"] == pytest.approx(0.5)
    assert result["score"] == pytest.approx(1 / 3)


def test_ov_f_is_not_the_mean_of_per_sample_f(wheel):
    gt = {"a": ["happy"], "b": ["happy", "sad"]}
    pred = {"a": ["happy", "sad", "angry"], "b": ["happy"]}
    result = ov_scores(wheel, gt, pred)
    # a: P = 1/3, R = 1; b: P = 1, R = 1/2 → P = 2/3, R = 3/4, F = 12/17 (per-sample mean F would be 7/12)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(3 / 4)
    assert result["score"] == pytest.approx(12 / 17)


def test_ov_all_empty_predictions_score_zero(wheel):
    assert ov_scores(wheel, {"a": ["sad"]}, {"a": []})["score"] == 0.0


def test_sentiment_f1_drops_zero_valence_and_neutral_counts_as_negative():
    gt = {"a": 1.2, "b": -0.8, "c": 0.0, "d": 0.4}
    pred = {"a": 1, "b": -1, "c": 1, "d": 0}
    result = sentiment_f1(gt, pred)
    # c dropped; truth [T, F, T], prediction [T, F, F]: both classes F1 = 2/3, weighted = 2/3
    assert result["n"] == 3
    assert result["score"] == pytest.approx(2 / 3)
    assert result["accuracy"] == pytest.approx(2 / 3)


CLEARLY_POSITIVE = ["happy", "glad", "friendly", "joyful", "excited", "grateful", "proud", "relieved", "hopeful",
                    "loving", "amused", "content", "pleased", "delighted", "cheerful", "thrilled", "satisfied"]
CLEARLY_NEGATIVE = ["fear", "afraid", "scared", "sad", "angry", "disgusted", "anxious", "worried", "nervous", "lonely",
                    "ashamed", "guilty", "frustrated", "hurt", "jealous", "terrified", "annoyed", "disappointed",
                    "depressed", "hopeless", "furious", "miserable"]


def test_common_emotion_words_get_their_sentiment(wheel):
    # `fear` reaches the positive root `happy` on wheel 2 through the wheels' alphabetical-first artefact
    # (fearless → courageous); the mapping keeps that artefact, the sentiment step must not inherit it
    assert wheel.map_word("fear", "wheel2") == "happy"
    wrong = [w for w in CLEARLY_POSITIVE if labels_to_sentiment(wheel, [w]) != 1]
    wrong += [w for w in CLEARLY_NEGATIVE if labels_to_sentiment(wheel, [w]) != -1]
    assert wrong == []


def test_a_word_the_lexicon_lacks_takes_its_wheel_roots(wheel):
    from runtime.sentiment import word_sentiment

    unknown = [w for w in sorted(wheel.wheel_words) if word_sentiment(w) is None and wheel.map_word(w, "wheel1")]
    assert unknown, "every wheel word is in the lexicon: pick another test word"
    word = unknown[0]
    roots = {wheel.map_word(word, k) for k in ("wheel1", "wheel2", "wheel3", "wheel4", "wheel5")} - {None}
    expected = sum(word_sentiment(r) or 0 for r in roots)
    assert labels_to_sentiment(wheel, [word]) == (expected > 0) - (expected < 0)


def test_labels_to_sentiment_votes_over_labels(wheel):
    assert labels_to_sentiment(wheel, ["happy"]) == 1
    assert labels_to_sentiment(wheel, ["sad", "angry"]) == -1
    assert labels_to_sentiment(wheel, ["neutral"]) == 0
    assert labels_to_sentiment(wheel, []) == 0


def test_best_epoch_and_paper_mean():
    assert best_epoch({"30": 0.5, "35": 0.7, "40": 0.7}) == ("35", 0.7)
    paper = [78.54, 78.80, 55.65, 60.54, 81.30, 80.90, 88.49, 86.18, 62.52]
    assert round(benchmark_mean({i: v / 100 for i, v in enumerate(paper)}), 2) == 74.77


def test_cosine_counts_two_zeroed_rows_as_agreeing():
    """A faceless window's vision features are zero in the reference and the variant alike: the gate's cosine must
    not read that as a quantisation loss (it read 0.85 for an INT8 graph that agrees to 1e-7 on every face)."""
    import numpy as np

    from benchmarks.metrics import cosine

    a = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]])
    assert cosine(a, a.copy()) == pytest.approx(1.0)
    assert cosine(a, np.array([[1.0, 2.0], [1.0, 0.0], [3.0, 0.0]])) == pytest.approx(2 / 3)
    assert cosine(a[:1], -a[:1]) == pytest.approx(-1.0)
