from runtime.sentiment import NEGATIVE, POSITIVE, sentiment


def test_majority_of_known_words():
    assert sentiment(["happy", "excited"]) == "positive"
    assert sentiment(["sad", "angry", "happy"]) == "negative"
    assert sentiment(["surprised"]) == "neutral" and sentiment([]) == "neutral"
    assert sentiment(["Very Happy"]) == "positive"  # phrases count word by word, any case


def test_the_lexicon_takes_no_side_twice():
    assert not POSITIVE & NEGATIVE
