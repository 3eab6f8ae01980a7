"""The streaming CLI on real media: files, a UDP MPEG-TS stream from a second process, lavfi as a fake
camera and microphone, a missing camera, no audio, truncated input, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import ROOT, run_cli


def _records(stdout):
    lines = [json.loads(x) for x in stdout.strip().splitlines()]
    return [x for x in lines if "window" in x], [x["summary"] for x in lines if "summary" in x]


def _check_window(record):
    assert {"window", "start", "end", "labels", "sentiment", "text", "face", "speech", "subtitle", "dropped",
            "timings_ms"} <= set(record)
    assert record["labels"], "the labels answer is grammar-constrained, so it always parses"
    assert {"vision", "audio", "fusion", "llm_prefill", "llm_decode", "window_latency"} <= set(record["timings_ms"])


@pytest.fixture(scope="module")
def long_clip(media_dir):
    from train.synth import write_clip

    return write_clip(media_dir / "nine.mp4", seconds=9.0, seed=4)


def test_file_is_answered_window_by_window(bundle_f16, long_clip):
    result = run_cli("runtime.stream", "--video", str(long_clip), "--bundle", str(bundle_f16), "--max-new-tokens", "12",
                     "--profile")
    assert result.returncode == 0, result.stderr
    windows, (summary,) = _records(result.stdout)
    assert [(w["start"], w["end"]) for w in windows] == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert windows[-1]["partial"] and not windows[0]["partial"]
    for w in windows:
        _check_window(w)
    assert summary["answered"] == 4 and summary["dropped"] == 0  # a file waits for the LLM
    assert "p95" in result.stderr and "window_latency" in result.stderr


def test_feature_reuse_gives_the_same_answers(bundle_f16, long_clip):
    args = ("runtime.stream", "--video", str(long_clip), "--bundle", str(bundle_f16), "--max-new-tokens", "12")
    reused, fresh = run_cli(*args), run_cli(*args, "--no-feature-reuse")
    assert reused.returncode == fresh.returncode == 0
    texts = lambda r: [w["text"] for w in _records(r.stdout)[0]]  # noqa: E731
    assert texts(reused) == texts(fresh)


@pytest.mark.parametrize("scope", ["clip", "video"])
def test_feature_reuse_gives_the_same_fused_rows_in_either_normalisation(bundle_copy, media_dir, scope):
    """Per-clip normalisation lets overlapping windows share clip features; per-video (per-window)
    normalisation makes a clip's features depend on its window, so they must not be shared. The audio grows
    louder clip by clip, so the two normalisations differ."""
    import dataclasses

    import numpy as np

    from runtime.manifest import read_manifest, write_manifest
    from runtime.outputs import JsonLines
    from runtime.pipeline import Pipeline
    from runtime.sources import media_file
    from runtime.stream import Stream, StreamOptions
    from train.synth import write_clip

    t = np.arange(9 * 16000) / 16000
    voice = (np.sin(2 * np.pi * 220 * t) * 0.002 * 10 ** (t / 3)).astype(np.float32)  # ×10 louder every 3 s
    clip = write_clip(media_dir / f"louder-{scope}.mp4", seconds=9.0, seed=6, waveform=voice)
    manifest = read_manifest(bundle_copy)
    manifest.preprocessing = dataclasses.replace(manifest.preprocessing, audio_norm_scope=scope)
    write_manifest(bundle_copy, manifest)
    pipeline = Pipeline(bundle_copy)
    fused = {}
    for reuse in (True, False):
        stream = Stream(pipeline, [media_file(str(clip))], StreamOptions(reuse_features=reuse, warmup=False),
                        JsonLines(open(os.devnull, "w")))
        rows, encode = [], stream.encode
        stream.encode = lambda w, rows=rows, encode=encode: rows.append(encode(w)) or rows[-1]
        stream.run()
        fused[reuse] = [r[0] for r in rows]
    pipeline.close()
    assert len(fused[True]) == len(fused[False]) == 4
    for a, b in zip(fused[True], fused[False]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_lavfi_fake_camera_and_microphone(bundle_f16):
    result = run_cli("runtime.stream", "--input", "testsrc=size=160x120:rate=15", "--format", "lavfi",
                     "--audio-input", "sine=frequency=300:sample_rate=16000", "--audio-format", "lavfi",
                     "--bundle", str(bundle_f16), "--max-windows", "3", "--max-new-tokens", "16", "--face-crop")
    assert result.returncode == 0, result.stderr
    windows, (summary,) = _records(result.stdout)
    assert 1 <= len(windows) <= 3 and summary["windows"] == 3
    for w in windows:
        _check_window(w)
        assert w["face"] is False  # a test pattern has no face


def test_udp_mpegts_stream_from_a_second_process(bundle_f16, media_dir):
    from train.synth import write_clip

    ts = write_clip(media_dir / "camera.ts", seconds=10.0, seed=5, gop=8)
    port = 23000 + int(time.time()) % 1000
    receiver = subprocess.Popen([sys.executable, "-m", "runtime.stream", "--url", f"udp://127.0.0.1:{port}",
                                 "--bundle", str(bundle_f16), "--max-windows", "2", "--max-new-tokens", "16"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    sender = subprocess.Popen([sys.executable, "-c", SENDER, str(ts), f"udp://127.0.0.1:{port}?pkt_size=1316"], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True)
    try:
        out, err = receiver.communicate(timeout=120)
    finally:
        sender.kill()
    assert receiver.returncode == 0, err
    windows, (summary,) = _records(out)
    assert summary["windows"] == 2 and windows
    _check_window(windows[0])


# A stand-in IP camera: remux an MPEG-TS file onto UDP at real-time pace.
SENDER = """
import sys, time, av
src = av.open(sys.argv[1])
dst = av.open(sys.argv[2], "w", format="mpegts")
streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
start = time.monotonic()
for packet in src.demux():
    if packet.dts is None:
        continue
    if packet.pts is not None and packet.stream.type == "video":
        delay = start + float(packet.pts * packet.time_base) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    packet.stream = streams[packet.stream.index]
    dst.mux(packet)
dst.close()
"""


def test_missing_camera_lists_devices(bundle_f16):
    result = run_cli("runtime.stream", "--camera", "0", "--bundle", str(bundle_f16))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: no camera at /dev/video0")


def test_file_without_audio(bundle_f16, media_dir):
    from train.synth import write_clip

    silent = write_clip(media_dir / "silent5.mp4", seconds=5.0, audio=False)
    result = run_cli("runtime.stream", "--video", str(silent), "--bundle", str(bundle_f16), "--max-new-tokens", "16")
    assert result.returncode == 0, result.stderr
    windows, _ = _records(result.stdout)
    assert len(windows) == 2 and all(w["labels"] for w in windows)


def test_truncated_stream_answers_what_there_is(bundle_f16, media_dir):
    from train.synth import write_clip

    ts = write_clip(media_dir / "cut.ts", seconds=8.0, seed=6)
    cut = media_dir / "cut-short.ts"
    data = ts.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)] + b"\x47garbage" * 50)
    result = run_cli("runtime.stream", "--video", str(cut), "--bundle", str(bundle_f16), "--max-new-tokens", "16")
    assert result.returncode == 0, result.stderr
    windows, (summary,) = _records(result.stdout)
    assert windows and summary["answered"] == len(windows)


def test_truncated_mp4_is_one_line(bundle_f16, long_clip, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(long_clip.read_bytes()[:3000])
    result = run_cli("runtime.stream", "--video", str(cut), "--bundle", str(bundle_f16))
    assert result.returncode == 1 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_flushes_and_summarises(bundle_f16, sig):
    # run with SIGINT ignored, as a background job started by a script inherits it: the stream still stops
    proc = subprocess.Popen([sys.executable, "-m", "runtime.stream", "--input", "testsrc=size=160x120:rate=15",
                             "--format", "lavfi", "--realtime", "--bundle", str(bundle_f16), "--max-new-tokens", "16"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    lines, err_lines = [], []  # both pipes drained as they fill, so the stream never blocks on a write
    readers = [threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True),
               threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)]
    for r in readers:
        r.start()
    deadline = time.monotonic() + 120
    while not any('"window"' in x for x in lines) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # Ctrl-C once windows flow, however long start-up takes on a loaded machine
    time.sleep(1)
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack to stderr
        proc.wait(timeout=10)
        readers[1].join(timeout=10)
        pytest.fail(f"no exit within 60 s of {sig.name}; thread stacks:\n{''.join(err_lines)[-6000:]}")
    for r in readers:
        r.join(timeout=10)
    assert proc.returncode == 130, "".join(err_lines)
    windows, (summary,) = _records("".join(lines))
    assert summary["interrupted"] and windows
