import numpy as np

from runtime.manifest import Preprocessing
from runtime.preprocess import frame_indices
from runtime.windows import Windower


def _feed(windower, seconds, fps=15, sr=16000, audio=True):
    out = []
    for i in range(int(seconds * fps)):
        t = i / fps
        out += windower.add_frame(t, np.full((2, 2, 3), i % 256, np.uint8))
        if audio:
            out += windower.add_audio(t, np.full(sr // fps, i, np.float32))
    return out


def test_grid_frames_are_the_reference_frames_at_a_constant_rate():
    windows = _feed(Windower(Preprocessing(), 4.0, 2.0, True), 9)
    first = windows[0]
    assert (first.start, first.end) == (0.0, 4.0)
    assert [int(f[0, 0, 0]) for f in first.frames] == frame_indices(60, 8)  # 4 s at 15 fps
    assert first.frame_keys == [0, 500, 1000, 1500, 2000, 2500, 3000, 3500]
    assert first.waveform.size == 4 * 16000 and first.audio_offset == 0


def test_overlapping_windows_share_grid_frames():
    w0, w1 = _feed(Windower(Preprocessing(), 4.0, 2.0, True), 7)[:2]
    assert w1.start == 2.0 and w1.frame_keys[:4] == w0.frame_keys[4:]
    assert all(a is b for a, b in zip(w1.frames[:4], w0.frames[4:]))  # the same frame objects, not copies


def test_flush_emits_the_unfinished_tail_once():
    w = Windower(Preprocessing(), 4.0, 2.0, True)
    windows = _feed(w, 5)
    assert [x.index for x in windows] == [0]
    tail = w.flush()
    assert len(tail) == 1 and tail[0].start == 2.0 and tail[0].partial
    assert w.flush() == []


def test_short_input_still_gives_one_window():
    w = Windower(Preprocessing(), 4.0, 2.0, False)
    assert _feed(w, 1.5, audio=False) == []
    (tail,) = w.flush()
    assert tail.index == 0 and len(tail.frames) == 8 and tail.waveform.size == 0


def test_memory_stays_bounded_over_a_long_stream():
    w = Windower(Preprocessing(), 4.0, 2.0, True)
    windows = _feed(w, 200)
    assert len(windows) >= 97
    assert w.buffered_samples <= 6 * 16000  # the oldest open window's audio, not the whole stream
    assert len(w._open) <= 3


def test_audio_that_stops_leaves_windows_without_audio_not_lost():
    w = Windower(Preprocessing(), 4.0, 2.0, True)
    out = []
    for i in range(40 * 15):  # 40 s of video, audio only for the first 4 s
        t = i / 15
        out += w.add_frame(t, np.full((2, 2, 3), 1, np.uint8))
        if t < 4:
            out += w.add_audio(t, np.full(16000 // 15, 0.5, np.float32))
    out += w.flush()
    assert [x.index for x in out] == list(range(19))  # every window whose end the video reached
    assert out[0].has_audio and not out[-1].has_audio and all(x.has_video for x in out)
    assert out[-1].waveform.size == 0


def test_video_that_never_starts_leaves_windows_clocked_by_the_audio():
    w = Windower(Preprocessing(), 4.0, 2.0, True)
    out = []
    for i in range(20 * 10):
        out += w.add_audio(i / 10, np.full(1600, 0.1, np.float32))
    out += w.flush()
    assert [x.index for x in out] == list(range(9))
    assert all(not x.has_video and x.frames == [] and x.has_audio for x in out)
    assert out[0].waveform.size == 4 * 16000


def test_a_timestamp_jump_neither_floods_windows_nor_allocates_the_gap():
    w = Windower(Preprocessing(), 4.0, 2.0, True)
    out = _feed(w, 6)
    jump = 100_000.0
    for i in range(6 * 15):
        t = jump + i / 15
        out += w.add_frame(t, np.full((2, 2, 3), 2, np.uint8))
        out += w.add_audio(t, np.full(16000 // 15, 0.2, np.float32))
    assert len(out) < 12 and w.discontinuities == 1
    assert w.buffered_samples <= 8 * 16000 and len(w._open) <= 4
