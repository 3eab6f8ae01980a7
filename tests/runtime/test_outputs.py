"""A readable line on a terminal or pipe that is not UTF-8 is still printed (not taken for a closed output)."""

import io

from runtime.outputs import JsonLines, Readable
from runtime.stream.records import RecordWriter

RECORD = {"window": 0, "start": 0.0, "end": 4.0, "labels": ["happy", "élan"], "sentiment": "positive", "text": "",
          "face": True, "timings_ms": {"window_latency": 12.0}}
SUMMARY = {"windows": 1, "answered": 1, "dropped": 0, "failed": 0, "silent": 0, "corrupt_packets": 0, "elapsed_s": 1.0}


def test_text_on_an_ascii_output_is_written_through_the_record_writer():
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    closed = []
    records = RecordWriter(Readable(out), on_closed=lambda: closed.append(True))
    records.start()
    records.write(RECORD)
    records.summary(SUMMARY)
    records.close()
    text = raw.getvalue().decode("ascii")
    assert not closed and not records.closed
    assert "happy, ?lan (positive)" in text and "[00:00.0?00:04.0]" in text and "1 windows, 1 answered" in text


def test_latin1_keeps_what_it_can_show_and_print_on_the_same_stream_is_safe():
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="latin-1", write_through=True)
    Readable(out).window(RECORD)
    print("clip-–.mp4: happy", file=out)  # what --clip --text prints on the same stream
    text = raw.getvalue().decode("latin-1")
    assert "happy, élan" in text and "clip-?.mp4: happy" in text


def test_json_lines_are_ascii_whatever_the_output():
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    JsonLines(out).window(RECORD)
    assert b"\\u00e9lan" in raw.getvalue()


def test_the_cli_prints_text_on_an_ascii_stdout():
    from tests.conftest import ROOT, run_cli

    result = run_cli("runtime.stream", "--video", str(ROOT / "runtime" / "demo" / "samples" / "happy.mp4"), "--text",
                     "--max-windows", "1", "--max-new-tokens", "8", env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and lines[0].startswith("[00:00.0?00:04.0]") and "windows" in lines[-1], result.stdout
