from runtime.sentiment import NEGATIVE, NEUTRAL, POSITIVE, sentiment, word_sentiment


def test_majority_of_known_words():
    assert sentiment(["happy", "excited"]) == "positive"
    assert sentiment(["sad", "angry", "happy"]) == "negative"
    assert sentiment(["surprised"]) == "neutral" and sentiment([]) == "neutral"
    assert sentiment(["Very Happy"]) == "positive"  # phrases count word by word, any case


def test_the_lexicon_takes_no_side_twice():
    assert not POSITIVE & NEGATIVE


def test_fear_is_negative_and_unknown_words_are_none():
    assert word_sentiment("fear") == -1 and word_sentiment("glad") == 1 and word_sentiment("friendly") == 1
    assert word_sentiment("surprised") == 0 and word_sentiment("teapot") is None
    assert not (POSITIVE | NEGATIVE) & NEUTRAL
