"""Subtitles from many templates and words, so that what the LLM learns from the corpus is the answer format and the
link between words, face and voice — not a fixed list of sentences.

Each emotion has templates with slots; each slot has a word list. A template belongs to one split (by its index), so
the test split's sentences come from templates training never saw. Words for the `happy_adj` slot are also drawn
from VADER's human valence ratings (MIT, `vaderSentiment` package) when it is
installed, on top of the lists here.

    sentence("sad", "train", rng) → "Honestly, my uncle lost his job last week."
"""

from __future__ import annotations

import random
import re

SLOTS = {
    "person": ["my mother", "my father", "my sister", "my brother", "my best friend", "my neighbour", "my boss",
               "my son", "my daughter", "my grandfather", "my aunt", "my wife", "my husband", "our teacher",
               "my colleague", "my cousin", "my partner", "our coach", "my flatmate", "my uncle"],
    "good_news": ["got the job", "passed the exam", "won the race", "is getting married", "had a baby girl",
                  "got a promotion", "finished the marathon", "bought a house", "got into university",
                  "made the team", "recovered completely", "won a prize", "finally came home", "got engaged"],
    "bad_news": ["lost his job", "is in hospital", "passed away", "moved far away", "failed the exam",
                 "had an accident", "is very ill", "lost her job", "left without saying goodbye", "broke his leg",
                 "lost the baby", "lost everything in the fire", "is leaving us", "did not make it"],
    "nice_thing": ["this song", "this place", "the sunshine today", "your cooking", "the new flat", "this gift",
                   "the view from here", "our garden", "this little café", "the holidays", "the concert",
                   "spending time with you", "the way you laugh", "this weekend"],
    "fun_plan": ["the concert", "our holiday", "the match", "the wedding", "the festival", "the road trip",
                 "the party", "the first day at the new job", "the flight to Japan", "the opening night",
                 "meeting the baby", "the final", "the surprise party", "the launch"],
    "loss": ["her", "him", "my dog", "the old house", "my friends from school", "those summers", "my grandmother",
             "the way we were", "our talks", "my dad", "home", "my old life"],
    "offence": ["lied to me", "took my parking space", "read my messages", "broke the window", "ignored me",
                "cancelled again", "shouted at my kids", "cheated", "took the money", "blamed me for it",
                "scratched my car", "skipped the queue", "forgot my birthday again", "laughed at me"],
    "ordeal": ["the exam", "the interview", "the operation", "the test results", "the flight", "the court date",
               "the meeting with the bank", "the speech", "the driving test", "the first day", "the deadline",
               "the diagnosis", "the storm", "the drive home in this snow"],
    "gross": ["the fridge", "that sandwich", "the bathroom", "this milk", "the bin", "the carpet", "the soup",
              "the sink", "that fish", "the floor", "this meat", "the toilet"],
    "surprise": ["you are here", "she said yes", "they sold the house", "he can sing", "it snowed in May",
                 "we won", "the shop closed", "you remembered", "he quit", "it was you all along"],
    "thing": ["the report", "the package", "the keys", "the invoice", "the charger", "the form", "the tickets",
              "the receipt", "the bill", "the map", "the folder", "the printer paper"],
    "place": ["on the desk", "in the car", "by the door", "in the second drawer", "at the front desk",
              "in the kitchen", "next to the lift", "on the top shelf", "in the blue bag", "at the station"],
    "time": ["at nine", "on Monday", "tomorrow morning", "at half past two", "next week", "after lunch",
             "on Thursday", "at six", "this afternoon", "in ten minutes"],
    "errand": ["pick up the kids", "buy some bread", "call the plumber", "fill up the tank", "book a table",
               "post the letter", "renew the insurance", "charge the phone", "return the books", "water the plants"],
    "transport": ["the bus", "the train", "the ferry", "the tram", "the shuttle", "the coach", "the last metro"],
    "happy_adj": ["happy", "glad", "delighted", "thrilled", "grateful", "pleased", "proud", "overjoyed", "lucky"],
    "excited_adj": ["excited", "pumped", "thrilled", "buzzing", "so ready", "over the moon", "dying to go"],
    "calm_adj": ["calm", "relaxed", "at peace", "relieved", "content", "rested", "comfortable", "settled"],
    "sad_adj": ["sad", "lonely", "heartbroken", "miserable", "empty", "down", "hopeless", "low", "lost"],
    "angry_adj": ["furious", "angry", "fed up", "sick of this", "livid", "so annoyed", "done with you"],
    "anxious_adj": ["nervous", "worried", "scared", "anxious", "terrified", "on edge", "uneasy", "afraid"],
    "vehicle_fault": ["the brakes feel soft", "the steering is pulling to the left", "the engine is smoking",
                      "a warning light is flashing red", "the tyre pressure keeps dropping", "the wipers just stopped",
                      "the pedal goes all the way down", "something is burning under the bonnet"],
    "threat": ["a man has been walking behind us for ten minutes", "that van has been behind us since the motorway",
               "someone is trying the car door", "there is somebody in the back garden",
               "a stranger keeps asking where we live", "the same car passed the house three times"],
    "hazard": ["a lorry just swerved into our lane", "the bridge ahead is flooded", "there is ice on the whole road",
               "a deer jumped right in front of us", "we nearly hit the cyclist", "the fog is so thick I see nothing",
               "the tunnel is full of smoke", "a tree came down across the road"],
    "missing_one": ["the little one", "my son", "my daughter", "grandad", "our dog", "the baby's buggy", "my wallet and passport"],
    "disgust_adj": ["disgusting", "revolting", "gross", "vile", "nasty", "foul", "filthy", "sickening"],
}

# emotion → templates; {slot} draws a word from SLOTS (and for happy_adj from VADER too, when installed)
TEMPLATES = {
    "happy": ["{person} {good_news}!", "I am so {happy_adj} for {person}.", "I love {nice_thing}.",
              "this is the best news I have heard all year.", "{person} {good_news}, I could cry with joy.",
              "you made my day, thank you so much.", "I feel {happy_adj} today.", "what a lovely surprise from {person}.",
              "{nice_thing} makes me smile every time.", "we did it, {person} {good_news}!",
              "thank you, this means the world to me.", "I have never been this {happy_adj}."],
    "excited": ["I cannot wait for {fun_plan}!", "{fun_plan} is tomorrow, I am {excited_adj}!",
                "guess what, {person} {good_news}!", "we are going to {fun_plan}, yes!", "let's go, {fun_plan} starts now!",
                "this is going to be amazing!", "I am {excited_adj} about {fun_plan}!", "only two more days until {fun_plan}!",
                "oh wow, we got tickets for {fun_plan}!", "I am counting the hours until {fun_plan}!"],
    "calm": ["I feel {calm_adj} now that {ordeal} is over.", "there is no rush, we have all the time we need.",
             "everything went fine with {ordeal}.", "I am {calm_adj}, it all worked out.", "let's just sit here for a while.",
             "{ordeal} went well, what a relief.", "it is a quiet evening and I feel {calm_adj}.",
             "no worries, I have it under control.", "things are finally {calm_adj} at home.", "a cup of tea and a good book, perfect."],
    "sad": ["{person} {bad_news}.", "I miss {loss} so much.", "I feel so {sad_adj} without {loss}.",
            "nobody came to see me, not one person.", "{person} {bad_news} and I cannot stop crying.",
            "I keep thinking about {loss}.", "it hurts, I really thought we had a future.", "I feel {sad_adj} all the time.",
            "we had to say goodbye to {loss}.", "the house is so quiet since {person} {bad_news}.",
            "I don't know how to go on.", "it's over, there is nothing left."],
    "angry": ["{person} {offence}, I am {angry_adj}!", "how dare you, you {offence}!", "stop it right now!",
              "I am {angry_adj}, this is the third time!", "get out of my way!", "who do you think you are?",
              "you {offence} and you expect me to smile?", "I have had enough of your excuses!",
              "do not ever talk to me like that again!", "this is completely unacceptable!",
              "unbelievable, they {offence}!", "leave me alone, I am {angry_adj}!"],
    "anxious": ["I am so {anxious_adj} about {ordeal}.", "what if {ordeal} goes wrong?", "my hands are shaking before {ordeal}.",
                "I have not slept because of {ordeal}.", "I can't breathe, what if something happens?",
                "what if {person} {bad_news}?", "I have a bad feeling about {ordeal}.", "I am {anxious_adj}, please call me back.",
                "my heart is racing, {ordeal} is in an hour.", "I keep checking the door, something feels wrong."],
    "disgusted": ["ugh, {gross} smells {disgust_adj}.", "that is {disgust_adj}, get it away from me.",
                  "{gross} is covered in mould.", "I think I'm going to be sick.", "how can people live like this?",
                  "there is hair in {gross}, yuck.", "{gross} is absolutely {disgust_adj}.",
                  "who left {gross} like this? It's {disgust_adj}.", "I can't even look at {gross}.",
                  "eww, something is rotting in {gross}."],
    "surprised": ["wait, {surprise}?", "no way, {surprise}!", "I can't believe {surprise}!", "really? {surprise}?",
                  "oh my, I never expected that.", "what? Since when?", "hold on, {person} {good_news}?",
                  "you're kidding, {surprise}?"],
    # fear, urgency and danger as a driver or a customer says it (the corpus's danger rows; emotion anxious)
    "danger": ["help, {vehicle_fault}!", "{threat}, I am {anxious_adj}.", "watch out, {hazard}!",
               "I can't find {missing_one} anywhere, please help me look.", "pull over, {vehicle_fault}.",
               "call the police, {threat}.", "slow down, {hazard}.", "{vehicle_fault} and we are going downhill.",
               "{missing_one} was right here a minute ago, where did they go?", "I think {threat}, lock the doors.",
               "oh no, {hazard}, hold on!", "stop the car, {vehicle_fault}!"],
    "neutral": ["{thing} is {place}.", "{transport} leaves {time}.", "I need to {errand} {time}.",
                "can you {errand} {time}?", "the meeting moved to {time}.", "I left {thing} {place}.",
                "we should {errand} before {transport} comes.", "{person} will {errand} {time}.",
                "did you put {thing} {place}?", "the shop opens {time}.", "please check {thing} again.",
                "I will take {transport} {time}.", "turn left after the second light.", "the car park is full today.",
                "we still have to {errand}.", "{thing} needs a signature."],
}

OPENERS = ["", "", "", "Well, ", "Honestly, ", "You know, ", "Okay, ", "So, ", "Oh, ", "Listen, ", "Look, "]
SPLITS = ("train", "val", "test")
VADER_SLOTS = {"happy_adj": 2.0}  # slot → the VADER mean valence it takes words from (at least)
_SLOT_RE = re.compile(r"\{(\w+)\}")


def template_split(index: int) -> str:
    """Templates split 4 : 1 : 1 by index (every template list has at least 6)."""
    return SPLITS[0] if index % 6 < 4 else SPLITS[1] if index % 6 == 4 else SPLITS[2]


def _vader_words() -> dict[str, list[str]]:
    """Single adjective-like words from VADER's lexicon with a strong valence, per VADER slot ({} without it)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return {}
    lexicon = SentimentIntensityAnalyzer().lexicon
    words = {}
    for slot, bound in VADER_SLOTS.items():
        pick = [w for w, v in lexicon.items() if w.isalpha() and v >= bound
                and w.endswith(("ful", "ed", "ous", "ive", "ic", "ant", "ent")) and not w.endswith(("ly", "ity", "ment"))]
        words[slot] = sorted(pick)
    return words


_VADER: dict[str, list[str]] | None = None


def slot_words(slot: str) -> list[str]:
    global _VADER
    if _VADER is None:
        _VADER = _vader_words()
    return SLOTS[slot] + _VADER.get(slot, [])


def templates(emotion: str, split: str) -> list[str]:
    return [t for i, t in enumerate(TEMPLATES[emotion]) if template_split(i) == split]


def sentence(emotion: str, split: str, rng: random.Random) -> str:
    """One subtitle for `emotion` from the templates of `split`, capitalised."""
    template = rng.choice(templates(emotion, split))
    text = rng.choice(OPENERS) + _SLOT_RE.sub(lambda m: rng.choice(slot_words(m.group(1))), template)
    return text[0].upper() + text[1:]
