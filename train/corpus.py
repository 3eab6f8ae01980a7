"""A synthetic MER-Caption-style corpus: faces and voices driven by an emotion, subtitles that agree with it,
say nothing about it, or contradict it — so that every modality matters.

A non-neutral emotion shows in face and voice (40 % of its clips), in the voice only (15 %), in the face
only (15 %) or in the words only (30 %). One clip in ten shows nobody and is silent, as a camera with nobody in
view: its subtitle is all there is to go on (a third of these say something neutral); half of these are digital
silence (a camera without a microphone), a third a plain grey picture. Each clip has a random identity (face
shape, skin, hair, glasses, background, position, scale, lighting, camera noise, voice), an expression track of
action-unit-like parameters, speech whose prosody follows the emotion (espeak-ng when installed, else a
source-filter voice), a subtitle, an OV label list, a sentiment and a description naming the visual, acoustic and
textual cues. Splits are disjoint by identity and by sentence. Output: the clips, manifest.jsonl (with split),
and MER-Caption-style CSVs per split.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from train import sentences
from train.synth import write_media

# emotion → labels (emotion-wheel words), sentiment, expression (action-unit-like targets), prosody
#   expression: smile (mouth-corner pull, −1..1), brow_raise, brow_lower, brow_knit, eye_open, mouth_open, nod, shake
#   prosody: pitch (espeak 0-99), range (0-1), rate (words/min), loudness (espeak amplitude), tremor, pauses
EMOTIONS = {
    "happy": (["happy", "joyful"], 1, dict(smile=0.9, brow_raise=0.2, eye_open=0.8, mouth_open=0.35),
              dict(pitch=70, range=0.8, rate=185, loudness=150, tremor=0.0, pauses=0)),
    "excited": (["excited", "energetic"], 1, dict(smile=0.7, brow_raise=0.9, eye_open=1.25, mouth_open=0.6, nod=0.5),
                dict(pitch=85, range=1.0, rate=215, loudness=180, tremor=0.0, pauses=0)),
    "calm": (["content", "peaceful"], 1, dict(smile=0.3, eye_open=0.85),
             dict(pitch=40, range=0.2, rate=135, loudness=90, tremor=0.0, pauses=1)),
    "sad": (["sad", "lonely"], -1, dict(smile=-0.7, brow_knit=0.7, eye_open=0.55, nod=-0.4),
            dict(pitch=20, range=0.1, rate=110, loudness=70, tremor=0.1, pauses=2)),
    "angry": (["angry", "frustrated"], -1, dict(smile=-0.3, brow_lower=0.9, eye_open=0.9, shake=0.4),
              dict(pitch=55, range=0.6, rate=200, loudness=200, tremor=0.0, pauses=0)),
    "anxious": (["anxious", "worried"], -1, dict(smile=-0.2, brow_raise=0.6, brow_knit=0.6, eye_open=1.2, mouth_open=0.15),
                dict(pitch=75, range=0.5, rate=205, loudness=110, tremor=0.6, pauses=1)),
    "surprised": (["surprised", "amazed"], 0, dict(brow_raise=1.0, eye_open=1.35, mouth_open=0.9),
                  dict(pitch=90, range=0.9, rate=170, loudness=160, tremor=0.0, pauses=0)),
    "disgusted": (["disgusted", "disapproving"], -1, dict(smile=-0.5, brow_lower=0.5, eye_open=0.7, shake=0.6),
                  dict(pitch=30, range=0.3, rate=140, loudness=120, tremor=0.0, pauses=1)),
    "neutral": ([], 0, dict(eye_open=1.0), dict(pitch=45, range=0.25, rate=160, loudness=100, tremor=0.0, pauses=0)),
}
FACE_CUES = {"smile": ("smiles", "turns the mouth corners down"), "brow_raise": "raises the eyebrows",
             "brow_lower": "lowers and draws the brows together", "brow_knit": "knits the inner brows",
             "mouth_open": "opens the mouth", "nod": "nods", "shake": "shakes the head"}

# Subtitles: drawn from templates and word lists (train/sentences.py), split by template; only the sarcastic /
# masked ones below are fixed sentences, split by index.
OPENERS = ["", "Well, ", "Honestly, ", "You know, ", "Okay, ", "So, "]
# Text that says the opposite of the face and voice: sarcasm, masked emotion, nervous laughter.
CONTRADICTING_CORES = {
    "angry": ["oh great, just what I needed.", "wonderful, another perfect day."],
    "sad": ["I am fine, really, do not worry about me.", "it does not matter to me at all."],
    "anxious": ["ha ha, everything is totally under control.", "no problem, I am completely relaxed."],
    "disgusted": ["mmm, lovely, my favourite.", "what a delightful surprise."],
    "happy": ["this is a disaster, isn't it?", "I suppose it could be worse."],
}
SPLITS = ("train", "val", "test")
ABSENT = "absent"  # face_emotion / voice_emotion of a clip with nobody in view and nothing heard
ABSENT_SHARE, ABSENT_NEUTRAL = 0.10, 1 / 3  # clips with nobody in them; of those, the share with neutral words
# Rows added after the n planned ones (so those stay exactly what they were, the frozen held-out split included): a
# person in view who says nothing (a driver, a customer reading a screen), whose face alone tells, and fear, urgency
# and danger in the words.
SILENT_SHARE, DANGER_SHARE = 0.10, 0.05


@dataclass
class Identity:
    id: int
    face_w: float
    face_h: float
    skin: tuple
    hair: tuple
    background: tuple
    glasses: bool
    cx: float
    cy: float
    scale: float
    light: float
    noise: float
    voice: str
    pitch_shift: int


def split_of(index: int) -> str:
    return SPLITS[0] if index % 10 < 8 else SPLITS[1] if index % 10 == 8 else SPLITS[2]


def make_identity(i: int, rng: np.random.Generator) -> Identity:
    # a close-up (the face fills most of the frame, as in the reference's face crops): at the 64 px the demo
    # encodes, a smile then moves the mouth corners by about 3 pixels
    female = bool(rng.integers(2))
    return Identity(
        id=i, face_w=float(rng.uniform(0.29, 0.42)), face_h=float(rng.uniform(0.48, 0.64)),
        skin=tuple(int(x) for x in rng.choice([(241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36),
                                               (255, 219, 172), (92, 58, 30)])),
        hair=tuple(int(x) for x in rng.integers(10, 120, 3)), background=tuple(int(x) for x in rng.integers(30, 230, 3)),
        glasses=bool(rng.random() < 0.3), cx=float(rng.uniform(0.4, 0.6)), cy=float(rng.uniform(0.45, 0.55)),
        scale=float(rng.uniform(0.85, 1.15)), light=float(rng.uniform(-0.3, 0.3)), noise=float(rng.uniform(0, 6)),
        voice=f"en-us+{'f' if female else 'm'}{int(rng.integers(1, 5))}", pitch_shift=int(rng.integers(-10, 10)))


def render(ident: Identity, au: dict, t: float, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """One RGB frame [h, w, 3] uint8 of `ident` showing the expression `au` at time t (seconds)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = ident.background
    s = ident.scale
    nod = au.get("nod", 0.0) * 0.03 * h * np.sin(2 * np.pi * 1.2 * t)
    shake = au.get("shake", 0.0) * 0.04 * w * np.sin(2 * np.pi * 1.8 * t)
    cx, cy = ident.cx * w + shake, ident.cy * h + nod
    rx, ry = ident.face_w * w * s, ident.face_h * h * s
    head = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    hair = (head <= 1.15) & (yy < cy - ry * 0.55)
    img[hair] = ident.hair
    img[head <= 1] = ident.skin
    talk = 0.5 if au.get("silent") else abs(np.sin(2 * np.pi * 3.1 * t)) * 0.5 + 0.5  # a silent mouth does not move
    eye_open = au.get("eye_open", 1.0) * (0.15 if (t * 0.7) % 1 < 0.04 else 1.0)  # blinks
    brow_y = cy - ry * (0.42 + 0.12 * au.get("brow_raise", 0) - 0.08 * au.get("brow_lower", 0))
    for side in (-1, 1):
        ex = cx + side * rx * 0.42
        ey = cy - ry * 0.18
        eye = ((xx - ex) / (rx * 0.16)) ** 2 + ((yy - ey) / max(ry * 0.07 * eye_open, 0.6)) ** 2 <= 1
        img[eye] = (250, 250, 250)
        img[eye & ((xx - ex) ** 2 + (yy - ey) ** 2 <= (rx * 0.06) ** 2)] = (40, 30, 20)
        tilt = side * (au.get("brow_knit", 0) * 0.35 - au.get("brow_lower", 0) * 0.35)
        bx = (xx - ex) / (rx * 0.22)
        brow = (abs(bx) <= 1) & (abs(yy - (brow_y + tilt * bx * ry * 0.08 * -side)) < max(1.0, h * 0.012))
        img[brow] = tuple(int(c * 0.5) for c in ident.hair)
        if ident.glasses:
            ring = np.abs(np.sqrt(((xx - ex) / (rx * 0.24)) ** 2 + ((yy - ey) / (ry * 0.14)) ** 2) - 1) < 0.12
            img[ring] = (20, 20, 20)
    mx = (xx - cx) / (rx * 0.45)
    smile = au.get("smile", 0.0)
    # a smile lifts the corners above the middle (∪), a frown drops them (∩); y grows downwards
    curve = cy + ry * 0.45 + smile * ry * 0.14 * (1 - np.clip(mx, -1, 1) ** 2) - smile * ry * 0.04
    opening = ry * (0.025 + 0.09 * au.get("mouth_open", 0.0) * talk + 0.03 * talk)
    mouth = (abs(mx) <= 1) & (yy > curve - opening) & (yy < curve + opening)
    img[mouth] = (140, 40, 50)
    if smile > 0.25:  # a smile shows the upper teeth
        img[mouth & (yy < curve - opening * 0.2)] = (235, 235, 225)
    # a nose: the shadow under it and along one side, as a camera sees it
    nose = ((xx - cx) / (rx * 0.09)) ** 2 + ((yy - (cy + ry * 0.18)) / (ry * 0.05)) ** 2 <= 1
    img[nose] = tuple(int(c * 0.72) for c in ident.skin)
    return _camera(img, ident, rng)


def render_empty(ident: Identity, h: int, w: int, rng: np.random.Generator, blank: bool = False) -> np.ndarray:
    """The identity's background with nobody in front of it, through the same light and camera noise; `blank`:
    a plain grey picture (a covered lens, a test pattern, a feed with nothing in it)."""
    if blank:
        return np.full((h, w, 3), int(np.mean(ident.background)), np.uint8)
    img = np.empty((h, w, 3), np.float32)
    img[:] = ident.background
    return _camera(img, ident, rng)


def _camera(img: np.ndarray, ident: Identity, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    light = 1 + ident.light * (np.arange(w, dtype=np.float32) / w - 0.5)  # a light from one side
    img = img * light[None, :, None] + rng.normal(0, ident.noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def speak(text: str, ident: Identity, prosody: dict, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """16 kHz mono speech of `text` with the emotion's prosody: espeak-ng when installed, else a synthetic voice."""
    pauses = prosody["pauses"]
    if pauses:
        words = text.split()
        text = " ".join(w + ("," if i % max(2, 5 - pauses) == 1 else "") for i, w in enumerate(words))
    if shutil.which("espeak-ng"):
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            pitch = int(np.clip(prosody["pitch"] + ident.pitch_shift, 0, 99))
            subprocess.run(["espeak-ng", "-v", ident.voice, "-p", str(pitch), "-s", str(int(prosody["rate"])),
                            "-a", str(int(prosody["loudness"] * 0.6)), "-w", f.name, text], check=True,
                           capture_output=True)
            from runtime.media import read_audio

            wave, _ = read_audio(f.name, sample_rate)
    else:
        seconds = max(1.0, len(text.split()) * 60.0 / prosody["rate"])
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        f0 = (90 + 2.2 * (prosody["pitch"] + ident.pitch_shift)) * (1 + 0.25 * prosody["range"] * np.sin(2 * np.pi * 0.8 * t))
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        syllables = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * prosody["rate"] / 60 * 1.5 * t))
        wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * syllables * prosody["loudness"] / 400
    if prosody["tremor"]:
        t = np.arange(wave.size) / sample_rate
        wave = wave * (1 + 0.5 * prosody["tremor"] * np.sin(2 * np.pi * 7 * t))
    return (wave + rng.normal(0, 0.003, wave.size)).astype(np.float32)


def render_clip(out: str | Path, row: dict, ident: Identity, seed: int) -> Path:
    """One corpus row as OUT/NAME.mp4 (160 × 120 at 15 fps, 16 kHz mono): the identity's face showing the row's
    face_emotion and its voice speaking the subtitle with the voice_emotion's prosody (ABSENT: an empty room)."""
    rng = np.random.default_rng(seed)
    nobody = row["face_emotion"] == ABSENT
    face_au = {} if nobody else EMOTIONS[row["face_emotion"]][2]
    if row.get("silent"):
        face_au = {**face_au, "silent": 1.0}
    if row["voice_emotion"] == ABSENT:  # a quiet room (the microphone's own noise), or no sound at all: a camera
        # without a microphone gives the encoder zeros, which normalisation leaves zeros while it lifts noise
        level = 0.0 if row.get("room") == "silence" else row.get("room_noise", 0.003)
        wave = rng.normal(0, level, int((0.9 + len(row["subtitle"].split()) * 60 / 160) * 16000)).astype(np.float32)
    else:
        wave = speak(row["subtitle"], ident, EMOTIONS[row["voice_emotion"]][3], rng)
    seconds = float(np.clip(wave.size / 16000 + 0.6, 2.5, 6.0))
    fps, w, h = 15, 160, 120
    onset = rng.uniform(0.2, 0.6)
    frames = []
    for i in range(int(seconds * fps)):
        t = i / fps
        ramp = float(np.clip((t - onset * 0.5) / 0.5, 0, 1))  # the expression builds up, then holds
        au = {k: (v if k != "eye_open" else 1 + (v - 1)) * ramp if k != "eye_open" else 1 + (v - 1) * ramp
              for k, v in face_au.items() if k != "silent"}
        if row.get("silent"):
            au["silent"] = 1.0
        frames.append(render_empty(ident, h, w, rng, row.get("blank", False)) if nobody else render(ident, au, t, h, w, rng))
    audio = np.zeros(int(seconds * 16000), np.float32)
    start = int(0.3 * 16000)
    audio[start:start + wave.size] = wave[: audio.size - start]
    return write_media(Path(out) / f"{row['name']}.mp4", frames, audio, fps=fps, options={"preset": "ultrafast", "crf": "26"},
                       gop=30)


def _clip_job(args) -> dict:  # the process pool's picklable call: the identity travels as a dict
    out, row, ident_dict, seed = args
    ident = Identity(**{**ident_dict, "skin": tuple(ident_dict["skin"]), "hair": tuple(ident_dict["hair"]),
                        "background": tuple(ident_dict["background"])})
    render_clip(out, row, ident, seed)
    return row


def describe(row: dict) -> str:
    if row["face_emotion"] == ABSENT:
        video = "In the video, nobody is in view."
    else:
        face = EMOTIONS[row["face_emotion"]][2]
        cues = [FACE_CUES["smile"][0] if face.get("smile", 0) > 0.25 else FACE_CUES["smile"][1]
                if face.get("smile", 0) < -0.25 else "keeps a straight face"]
        cues += [FACE_CUES[k] for k in ("brow_raise", "brow_lower", "brow_knit", "mouth_open", "nod", "shake")
                 if abs(face.get(k, 0)) > 0.3]
        video = f"In the video, the person {', '.join(cues[:-1]) + ' and ' + cues[-1] if len(cues) > 1 else cues[0]}."
    if row["voice_emotion"] == ABSENT:
        audio = "In the audio, nothing is heard."
    else:
        p = EMOTIONS[row["voice_emotion"]][3]
        voice = ["high-pitched" if p["pitch"] > 65 else "low" if p["pitch"] < 35 else "mid-pitched",
                 "lively" if p["range"] > 0.5 else "flat", "fast" if p["rate"] > 185 else "slow" if p["rate"] < 140 else "even",
                 "loud" if p["loudness"] > 150 else "quiet" if p["loudness"] < 95 else "moderate"]
        if p["tremor"] > 0.3:
            voice.append("trembling")
        if p["pauses"] > 1:
            voice.append("full of pauses")
        audio = f"In the audio, the voice is {', '.join(voice)}."
    text = {"consistent": "which fits the mood", "neutral": "which says little about the emotion",
            "contradicting": "but the face and voice tell another story",
            "revealing": "which reveals what the face and voice hide",
            "alone": "which is all there is to go on", "none": ""}[row["text_kind"]]
    labels = ", ".join(row["labels"]) or "neutral"
    words = (f"In the text, the subtitle says \"{row['subtitle']}\", {text}." if row["subtitle"]
             else "There is no subtitle.")
    return f"{video} {audio} {words} Considering all the clues, the character's emotional state is {labels}."


def plan(n: int, seed: int) -> tuple[list[dict], list[Identity]]:
    """The rows of a corpus (no media yet): deterministic for a seed."""
    rng = np.random.default_rng(seed)
    identities = [make_identity(i, rng) for i in range(max(10, n // 8))]
    names = list(EMOTIONS)
    rows = []
    for i in range(n):
        ident = identities[int(rng.integers(len(identities)))]
        split = split_of(ident.id)
        emotion = names[int(rng.integers(len(names)))]
        face_emotion = voice_emotion = emotion
        # each modality alone must sometimes carry the emotion, so that taking any one away costs; the words alone
        # carry it most often, as a subtitle is what a language model reads best
        r = rng.random()
        nobody = rng.random() < ABSENT_SHARE
        if nobody and rng.random() < ABSENT_NEUTRAL:
            emotion = "neutral"
        if nobody:
            face_emotion = voice_emotion = ABSENT
        elif emotion != "neutral" and r < 0.15:
            face_emotion = "neutral"  # a poker face: only the voice (and maybe the words) tell
        elif emotion != "neutral" and r < 0.30:
            voice_emotion = "neutral"  # a flat voice: only the face (and maybe the words) tell
        elif emotion != "neutral" and r < 0.60:
            face_emotion = voice_emotion = "neutral"  # hidden in face and voice: only the words tell
        kind_r = rng.random()
        text_rng = random.Random(f"{seed}:{i}")
        room = {}
        if nobody:  # the words are all there is: they say the emotion, or nothing about it
            kind, subtitle = "alone", sentences.sentence(emotion, split, text_rng)
            room = {"room": text_rng.choice(["silence", "noise"]), "room_noise": round(text_rng.uniform(0.001, 0.01), 4),
                    "blank": text_rng.random() < 1 / 3}
        elif face_emotion == voice_emotion == "neutral" != emotion:
            kind, subtitle = "revealing", sentences.sentence(emotion, split, text_rng)
        elif emotion in CONTRADICTING_CORES and kind_r < 0.25:
            cores = CONTRADICTING_CORES[emotion]
            allowed = [j for j in range(len(cores)) if split_of(j) == split] or list(range(len(cores)))
            kind, subtitle = "contradicting", OPENERS[int(rng.integers(len(OPENERS)))] + cores[allowed[int(rng.integers(len(allowed)))]]
        elif kind_r < 0.60:
            kind, subtitle = "neutral", sentences.sentence("neutral", split, text_rng)
        else:
            kind, subtitle = "consistent", sentences.sentence(emotion, split, text_rng)
        subtitle = subtitle[0].upper() + subtitle[1:]
        labels, sentiment, _, _ = EMOTIONS[emotion]
        labels = list(labels[: 1 + int(rng.integers(len(labels)))]) if labels else []
        row = {"name": f"s{seed}_{i:05d}", "path": f"s{seed}_{i:05d}.mp4", "split": split, "identity": ident.id,
               "emotion": emotion, "face_emotion": face_emotion, "voice_emotion": voice_emotion, "text_kind": kind,
               "subtitle": subtitle, "labels": labels, "sentiment": sentiment,
               "expression": {} if nobody else EMOTIONS[face_emotion][2],
               "prosody": {} if nobody else EMOTIONS[voice_emotion][3], **room}
        row["description"] = describe(row)
        rows.append(row)
    return rows + extra_rows(n, seed, identities), identities


def extra_rows(n: int, seed: int, identities: list[Identity]) -> list[dict]:
    """The silent people and the danger sentences, drawn with their own generator after the n planned rows."""
    rng = np.random.default_rng([seed, 24])
    names = list(EMOTIONS)
    rows = []
    for i in range(int(n * (SILENT_SHARE + DANGER_SHARE))):
        ident = identities[int(rng.integers(len(identities)))]
        split = split_of(ident.id)
        text_rng = random.Random(f"{seed}:x{i}")
        if i < int(n * SILENT_SHARE):  # silent and still: a face, no voice; the face is what tells
            emotion = face_emotion = names[int(rng.integers(len(names)))]
            voice_emotion = ABSENT
            words = rng.random() < 1 / 3  # mostly no subtitle at all; some typed or read-out neutral text
            kind, subtitle = ("neutral", sentences.sentence("neutral", split, text_rng)) if words else ("none", "")
            room = {"room": text_rng.choice(["silence", "noise"]), "room_noise": round(text_rng.uniform(0.001, 0.01), 4),
                    "silent": True}
        else:  # danger in the words; the face and voice show the fear, or not yet
            emotion = "anxious"
            face_emotion = voice_emotion = "anxious" if rng.random() < 0.5 else "neutral"
            kind = "consistent" if face_emotion == "anxious" else "revealing"
            subtitle, room = sentences.sentence("danger", split, text_rng), {}
        labels, sentiment, _, _ = EMOTIONS[emotion]
        labels = list(labels[: 1 + int(rng.integers(len(labels)))]) if labels else []
        row = {"name": f"s{seed}_x{i:05d}", "path": f"s{seed}_x{i:05d}.mp4", "split": split, "identity": ident.id,
               "emotion": emotion, "face_emotion": face_emotion, "voice_emotion": voice_emotion, "text_kind": kind,
               "subtitle": subtitle, "labels": labels, "sentiment": sentiment,
               "expression": EMOTIONS[face_emotion][2],
               "prosody": {} if voice_emotion == ABSENT else EMOTIONS[voice_emotion][3], **room}
        row["description"] = describe(row)
        rows.append(row)
    return rows


def write_corpus(out: str | Path, n: int, seed: int = 0, workers: int | None = None, progress: bool = True) -> Path:
    """Render a corpus of n clips into `out` (clips that exist already are kept). → the folder."""
    import os

    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, identities = plan(n, seed)
    by_id = {i.id: asdict(i) for i in identities}
    jobs = [(str(out), row, by_id[row["identity"]], seed * 1_000_003 + k) for k, row in enumerate(rows)
            if not (out / row["path"]).is_file()]
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        for _ in tqdm(pool.map(_clip_job, jobs, chunksize=4), total=len(jobs), desc="clips", disable=not progress):
            pass
    with open(out / "manifest.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]
        for file, header, get in (
                (f"{split}_openset.csv", ("name", "openset"), lambda r: "[" + ", ".join(r["labels"]) + "]"),
                (f"{split}_reason.csv", ("name", "reason"), lambda r: r["description"]),
                (f"{split}_subtitle.csv", ("name", "english"), lambda r: r["subtitle"]),
                (f"{split}_sentiment.csv", ("name", "valence"), lambda r: r["sentiment"])):
            with open(out / file, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows((r["name"], get(r)) for r in part)
        with open(out / f"{split}.jsonl", "w") as f:
            for row in part:
                f.write(json.dumps(row) + "\n")
    return out
