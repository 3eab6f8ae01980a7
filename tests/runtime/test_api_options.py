"""The command line is a thin layer over the Python API: every option has its keyword, and the keywords work."""

import inspect
from dataclasses import fields

import pytest

from runtime.api import SourceOptions, Stream
from runtime.pipeline import RuntimeOptions
from runtime.stream import StreamOptions
from runtime.stream.__main__ import api_keywords, parse_args

ARGV = ["--camera", "0", "--width", "640", "--height", "480", "--fps", "15", "--mic", "default", "--reconnect",
        "--window", "3", "--hop", "1", "--stall", "5", "--stage-timeout", "90", "--queue", "3", "--ctx", "1024",
        "--precision", "int8-dynamic", "--no-feature-reuse", "--skip-hash", "--subtitle", "Hi.", "--vad", "mark",
        "--no-asr", "--max-windows", "2", "--no-drop", "--threads", "2"]


def _api_keywords() -> set[str]:
    own = set(inspect.signature(Stream.__init__).parameters) - {"self", "options"}
    return own | {f.name for f in fields(SourceOptions)} | {f.name for f in fields(RuntimeOptions)} | {
        f.name for f in fields(StreamOptions)}


def test_every_command_line_option_has_an_api_keyword():
    args = parse_args(ARGV)
    keywords = api_keywords(args)
    missing = set(keywords) - _api_keywords()
    assert not missing, f"command-line options without an API keyword: {sorted(missing)}"
    assert keywords["window_s"] == 3.0 and keywords["queue_size"] == 3
    assert keywords["reuse_features"] is False and keywords["verify_hashes"] is False
    assert keywords["stage_timeout_s"] == 90.0 and keywords["encoder_variant"] == "int8-dynamic"


def test_a_camera_stream_through_the_api(bundle_f16):
    """Stream(camera=0, width=640, height=480, fps=15) works as --camera 0 --width 640 --height 480 --fps 15 does;
    nothing is opened until the stream runs."""
    from runtime.api import open_bundle

    pipeline = open_bundle(bundle_f16)
    try:
        stream = Stream(camera=0, width=640, height=480, fps=15, mic="default", reconnect=True, pipeline=pipeline,
                        window_s=3.0, stage_timeout_s=90.0, vad="off")
        camera, mic = stream.engine.specs
        assert camera.options == {"video_size": "640x480", "framerate": "15"} and camera.reconnect
        assert mic.format == "alsa" and mic.reconnect
        assert stream.engine.options.window_s == 3.0 and stream.engine.options.stage_timeout_s == 90.0
        with pytest.raises(TypeError, match="unknown options: widht"):
            Stream(camera=0, widht=640, pipeline=pipeline)
        cli = Stream(pipeline=pipeline, **api_keywords(parse_args(ARGV)))
        assert cli.engine.specs[0].options == camera.options and cli.engine.options.queue_size == 3
        assert not cli.engine.options.reuse_features and cli.engine.options.vad == "mark"
    finally:
        pipeline.close()
