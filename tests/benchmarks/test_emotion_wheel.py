import pytest

from benchmarks.emotion_wheel import WHEELS, EmotionWheel, WheelDataError, string_to_list


def test_official_counts(wheel):
    assert len(wheel.wheel_words) == 253
    assert len(wheel.raw_mapping) == 1255
    assert len(wheel.format_mapping) == 7386


def test_per_wheel_roots(wheel):
    roots = {k: sorted(wheel.wheels[k]) for k in WHEELS}
    assert roots["wheel1"] == ["disgusted", "happy", "mad", "sad", "scared", "surprised"]
    assert roots["wheel2"] == ["angry", "bad", "disgusted", "fearful", "happy", "sad", "surprised"]
    assert roots["wheel4"] == ["anger", "disgust", "fear", "genius", "joy", "sad"]
    assert roots["wheel3"] == roots["wheel5"]


@pytest.mark.parametrize("word, expected", [
    ("happy", ["happy", "happy", "joyful", "joy", "powerful"]),
    ("worried", ["scared", "fearful", "scared", "fear", "scared"]),
    ("surprise", ["surprised", "surprised", "powerful", "fear", None]),
    ("neutral", [None] * 5),
    ("fear", ["scared", "happy", "joyful", "genius", "joyful"]),  # the alphabetical-first artefact, kept
])
def test_documented_mapping_examples(wheel, word, expected):
    assert [wheel.map_word(word, k) for k in WHEELS] == expected


def test_unknown_words_are_dropped(wheel):
    assert wheel.map_labels(["happy", "flibbertigibbet", "neutral"], "wheel1") == {"happy"}


def test_string_to_list():
    assert string_to_list("[concerned, 'stressed', \"Anxious\"]") == ["concerned", "stressed", "anxious"]
    assert string_to_list("[]") == [] and string_to_list(None) == []


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(WheelDataError, match="not found"):
        EmotionWheel(tmp_path / "nowhere")
