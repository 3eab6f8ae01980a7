"""`--annotate` never fails silently, never leaves a partial file, never replaces a recording unasked, and writes
with the user's umask."""

import os
import resource
import stat
import subprocess
import sys
from types import SimpleNamespace

import pytest

from runtime.atomic import atomic_dir, atomic_file, write_text
from tests.conftest import ROOT, run_cli

SAMPLE = ROOT / "runtime" / "demo" / "samples" / "happy.mp4"


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".partial-" in p.name]


@pytest.fixture
def umask():
    previous = os.umask(0o022)

    def set_mask(mask):
        os.umask(mask)
    yield set_mask
    os.umask(previous)


def test_written_files_follow_the_umask(tmp_path, umask):
    umask(0o077)
    write_text(tmp_path / "private.json", "{}")
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    with atomic_dir(tmp_path / "bundle") as tmp:
        (tmp / "x").write_text("x")
    assert stat.S_IMODE((tmp_path / "bundle").stat().st_mode) == 0o700
    umask(0o027)
    write_text(tmp_path / "group.json", "{}")
    assert stat.S_IMODE((tmp_path / "group.json").stat().st_mode) == 0o640
    umask(0o022)
    write_text(tmp_path / "shared.json", "{}")
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o644


def test_an_atomic_file_never_replaces_unasked(tmp_path):
    target = tmp_path / "recording.mp4"
    target.write_text("the user's recording")
    with pytest.raises(FileExistsError):
        with atomic_file(target, overwrite=False) as tmp:
            tmp.write_text("new")
    # and a target that appears while the copy is written is not replaced either
    other = tmp_path / "late.mp4"
    with pytest.raises(FileExistsError):
        with atomic_file(other, overwrite=False) as tmp:
            tmp.write_text("new")
            other.write_text("appeared meanwhile")
    assert target.read_text() == "the user's recording" and other.read_text() == "appeared meanwhile"
    assert _leftovers(tmp_path) == []
    with atomic_file(target, overwrite=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_a_target_is_checked_before_anything_runs(tmp_path):
    from runtime.annotate import AnnotateError, check_target

    existing = tmp_path / "drive-annotated.mp4"
    existing.write_bytes(b"x")
    with pytest.raises(AnnotateError, match="--overwrite"):
        check_target(str(existing), str(SAMPLE))
    check_target(str(existing), str(SAMPLE), overwrite=True)
    with pytest.raises(AnnotateError, match="own input"):
        check_target(str(SAMPLE), str(SAMPLE), overwrite=True)
    with pytest.raises(AnnotateError, match="folder"):
        check_target(str(tmp_path), str(SAMPLE), overwrite=True)
    with pytest.raises(AnnotateError, match=r"\.mp4"):
        check_target(str(tmp_path / "out.webm"), str(SAMPLE))  # WebM holds neither H.264 nor AAC
    with pytest.raises(AnnotateError, match=r"\.mp4"):
        check_target(str(tmp_path / "out.xyz"), str(SAMPLE))
    for name in ("out.mp4", "out.mkv", "out.mov", "out"):
        check_target(str(tmp_path / name), str(SAMPLE))


def test_an_interrupted_start_leaves_no_partial_file(tmp_path):
    """Ctrl-C while the model warms up: the process ends without reaching close(); nothing is left behind."""
    code = f"""
from types import SimpleNamespace
from runtime.annotate import Annotator
from runtime.sources import media_file
stream = SimpleNamespace(specs=[media_file({str(SAMPLE)!r})], errors=[], stop=None)
Annotator({str(tmp_path / 'out.mp4')!r}, stream)
raise KeyboardInterrupt
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "KeyboardInterrupt" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # a disk that fills up after 20 kB


def test_a_copy_that_cannot_be_written_fails_with_one_line_and_leaves_nothing(tmp_path):
    pytest.importorskip("PIL")
    out = tmp_path / "out.mp4"
    result = subprocess.run([sys.executable, "-m", "runtime.stream", "--video", str(SAMPLE), "--annotate", str(out),
                             "--max-new-tokens", "8"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            preexec_fn=_limit_file_size)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--annotate cannot write" in errors[0] and str(out) in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_cli_refuses_to_replace_a_recording_unless_asked(tmp_path, umask):
    pytest.importorskip("PIL")
    out = tmp_path / "drive-annotated.mp4"
    out.write_bytes(b"the user's recording")
    refused = run_cli("runtime.stream", "--video", str(SAMPLE), "--annotate", str(out))
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and out.read_bytes() == b"the user's recording"
    umask(0o077)  # the child inherits it: a private recording
    replaced = run_cli("runtime.stream", "--video", str(SAMPLE), "--annotate", str(out), "--overwrite",
                       "--max-new-tokens", "8")
    assert replaced.returncode == 0, replaced.stderr
    assert out.stat().st_size > 1000 and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert _leftovers(tmp_path) == []


def test_a_fake_stream_is_enough_for_the_annotator(tmp_path):
    """The observer's contract: the stream's specs, errors and stop; nothing else is needed to build one."""
    from runtime.annotate import Annotator
    from runtime.sources import media_file

    stream = SimpleNamespace(specs=[media_file(str(SAMPLE))], errors=[], stop=SimpleNamespace(set=lambda: None))
    annotator = Annotator(str(tmp_path / "x.mkv"), stream)
    annotator.close(summary := {"input_errors": []})
    assert stream.errors and "no frame" in stream.errors[0] and summary["input_errors"] == stream.errors
    assert list(tmp_path.iterdir()) == []
