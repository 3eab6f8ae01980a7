from runtime.prompt import (OV_QUESTION, TEMPLATE, clean_answer, is_placeholder, ov_answer, parse_labels, parse_ov_answer,
                            segments)


def test_parse_ov_answer():
    assert parse_labels("The character's emotional state is happy, excited, surprised.") == ["happy", "excited", "surprised"]


def test_parse_tolerates_stop_text_case_and_conjunctions():
    text = "The character's emotional state is Anxious, worried and tense.### trailing junk"
    assert parse_labels(text) == ["anxious", "worried", "tense"]
    assert parse_labels("the emotional states are: [sad; lonely]") == ["sad", "lonely"]


def test_parse_non_format_answer_gives_nothing():
    assert parse_labels("I see a person talking.") == []
    assert parse_labels("") == []


def test_only_answers_exactly_in_the_ov_format_skip_the_judge():
    assert parse_ov_answer("The character's emotional state is happy, excited.") == ["happy", "excited"]
    assert parse_ov_answer("The character's emotional state is sad###") == ["sad"]
    description = ("In the video, the person smiles. Considering all the clues, the character's emotional state "
                   "is happy, excited.")
    assert parse_labels(description) == ["happy", "excited"]  # the stream's summary still finds them
    assert parse_ov_answer(description) is None  # but scoring sends it to the judge
    assert parse_ov_answer("The character's emotional state is happy. But maybe sad.") is None
    assert parse_ov_answer("I see a person talking.") is None


def test_ov_answer_round_trips_and_empty_is_neutral():
    assert parse_labels(ov_answer(["happy", "proud"])) == ["happy", "proud"]
    assert ov_answer([]) == "The character's emotional state is neutral."


def test_clean_answer_cuts_at_stop_text():
    assert clean_answer("  it is sad.###Human: more") == "it is sad."


def test_segments_place_three_embeddings_in_reference_order():
    segs = segments(TEMPLATE, "hello", OV_QUESTION)
    assert [s for s in segs if is_placeholder(s)] == ["<MultiHere>", "<AudioHere>", "<FaceHere>"]
    text = "".join(segs)
    assert "<Subtitle>hello</Subtitle>" in text and text.endswith(OV_QUESTION + " ###Assistant: ")


def test_placeholder_inside_subtitle_stays_text():
    segs = segments(TEMPLATE, "say <FaceHere> twice", OV_QUESTION)
    assert sum(is_placeholder(s) for s in segs) == 3
