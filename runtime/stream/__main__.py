"""Command line: emotion answers on live or recorded media, one JSON object per window.

    python -m runtime.stream --camera 0 --mic default --bundle B            # USB / CSI camera + microphone
    python -m runtime.stream --url rtsp://cam.local/stream --reconnect       # IP camera
    python -m runtime.stream --video clip.mp4 --subtitle "I can't believe it."
    python -m runtime.stream --clip a.mp4 --clip b.mp4                        # one answer per whole clip

Exit status: 0 done (also when the reader of stdout goes away, as with `| head`); 1 the bundle or an input
could not be opened, a live input died (error, or nothing for --stall seconds), no window could be answered,
or a clip failed; 2 bad arguments; 130 interrupted (Ctrl-C or SIGTERM), after the last window and the summary
are written — a second Ctrl-C / SIGTERM stops waiting for them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from dataclasses import fields

from runtime.api import Stream, default_bundle, fitted_subtitle, open_bundle
from runtime.errors import EdgeError, printable, run_cli
from runtime.llm import discard_log
from runtime.outputs import JsonLines, Readable
from runtime.mqtt import PASSWORD_ENV, USERNAME_ENV
from runtime.pipeline import Pipeline, RuntimeOptions
from runtime.signals import DEFAULT_HOLD, DEFAULT_SMOOTH_S
from runtime.task import TASKS, get_task

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m runtime.stream", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera", type=int, metavar="N", help="V4L2 camera /dev/videoN")
    src.add_argument("--video", metavar="FILE", help="a media file, answered window by window")
    src.add_argument("--url", help="a network stream: rtsp://, udp://, http://, srt:// ...")
    src.add_argument("--input", metavar="SPEC", help="any FFmpeg input, with --format (e.g. lavfi testsrc)")
    src.add_argument("--clip", action="append", metavar="FILE", help="answer each whole file once (repeatable)")
    ap.add_argument("--format", help="FFmpeg input format of --input (lavfi, v4l2, mpegts, ...)")
    ap.add_argument("--mic", metavar="DEVICE", help="ALSA microphone (e.g. default, hw:1,0); no audio without it for --camera")
    ap.add_argument("--audio-input", metavar="SPEC", help="a separate audio input, with --audio-format")
    ap.add_argument("--audio-format")
    ap.add_argument("--width", type=int)
    ap.add_argument("--height", type=int)
    ap.add_argument("--fps", type=float)
    ap.add_argument("--loop", action="store_true", help="--video: start again at the end")
    ap.add_argument("--realtime", action="store_true", help="--video / --input: read at 1× speed, as a camera would deliver")
    ap.add_argument("--reconnect", action="store_true", help="live inputs: reopen after a drop or the end")
    ap.add_argument("--bundle", default=default_bundle(), metavar="DIR",
                    help="bundle folder (default: $AFFECTGPT_BUNDLE, else the shipped demo bundle)")
    ap.add_argument("--window", type=float, default=4.0, metavar="S", help="window length in seconds (default 4)")
    ap.add_argument("--hop", type=float, default=2.0, metavar="S", help="seconds between window starts (default 2)")
    ap.add_argument("--task", choices=tuple(TASKS), default="labels",
                    help="labels: open-vocabulary emotion labels (grammar-constrained); describe: reasoning")
    ap.add_argument("--subtitle", default="", help="what is said (text inserted into the prompt)")
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="answer budget (default: the task's, 48 for labels and 256 for describe)")
    crop = ap.add_mutually_exclusive_group()
    crop.add_argument("--face-crop", dest="face_crop", action="store_true", default=None,
                      help="crop the largest face before the vision encoder (default: as the bundle was trained)")
    crop.add_argument("--no-face-crop", dest="face_crop", action="store_false", help="encode full frames")
    ap.add_argument("--no-feature-reuse", action="store_true", help="encode every frame and clip of every window")
    ap.add_argument("--vad", choices=("off", "mark", "skip"), default=None,
                    help="voice activity (silero-vad): mark windows with speech: true/false, or skip silent ones "
                         "(default: off; mark for the live subtitles that --mic turns on)")
    asr = ap.add_mutually_exclusive_group()
    asr.add_argument("--asr", dest="asr", action="store_true", default=None,
                     help="subtitles from the audio with Whisper tiny.en (extra asr); default: on for --mic without "
                          "--subtitle, gated by voice activity so that silence makes no text")
    asr.add_argument("--no-asr", dest="asr", action="store_false", help="never transcribe the audio")
    ap.add_argument("--max-windows", type=int, help="stop after this many windows")
    ap.add_argument("--max-people", dest="max_people", type=int, default=None, metavar="N",
                    help="people answered per window, largest faces first, in one LLM batch (default 3 with the "
                         "people extra, else 1; 1: the largest face only)")
    ap.add_argument("--stall", type=float, default=10.0, metavar="S",
                    help="a live input that delivers nothing for S seconds is dead (default 10)")
    ap.add_argument("--queue", type=int, default=2, help="windows waiting for the encoders (default 2)")
    drop = ap.add_mutually_exclusive_group()
    drop.add_argument("--drop", dest="drop", action="store_true", default=None, help="drop stale windows (default for live inputs)")
    drop.add_argument("--no-drop", dest="drop", action="store_false", help="never drop: wait for the LLM")
    out = ap.add_mutually_exclusive_group()
    out.add_argument("--json", dest="json", action="store_true", default=None, help="JSON lines (default when stdout is not a terminal)")
    out.add_argument("--text", dest="json", action="store_false", help="a readable line per window")
    ap.add_argument("--stage-timeout", type=float, default=None, metavar="S",
                    help="a stage (encoders, LLM) busy on one window for S seconds hangs: exit 1 so a service manager "
                         "restarts it (default: 20 x the warm-up window's cost, at least 60 s)")
    ap.add_argument("--profile", action="store_true", help="print p50 / p95 / p99 per stage at exit (stderr)")
    ap.add_argument("--serve", metavar="[HOST:]PORT", help="a live dashboard while the stream runs: the picture with the "
                    "face box and labels, a timeline, stage latencies, /events (SSE), /metrics (Prometheus), /healthz; "
                    "HOST defaults to 127.0.0.1 (extra serve)")
    ap.add_argument("--health-timeout", type=float, default=30.0, metavar="S",
                    help="--serve: /healthz fails when no window has been answered for S seconds (default 30)")
    ap.add_argument("--dashboard-token-file", metavar="FILE", help="--serve: the dashboard's token, read from FILE "
                    "(else $AFFECTGPT_DASHBOARD_TOKEN); required off loopback")
    ap.add_argument("--dashboard-host", action="append", default=[], metavar="NAME",
                    help="--serve: a host name the dashboard answers to besides loopback and IP addresses (repeatable)")
    ap.add_argument("--annotate", metavar="OUT.mp4", help="write the input with the answers drawn on it, and its audio "
                    "(--video only; extra serve)")
    ap.add_argument("--overwrite", action="store_true", help="--annotate: replace OUT.mp4 if it exists")
    ap.add_argument("--smooth", type=float, default=DEFAULT_SMOOTH_S, metavar="S",
                    help="time constant of the exponential smoothing of valence, arousal, emotion and sentiment per "
                         f"person, in seconds (default {DEFAULT_SMOOTH_S:g}, one window; 0 = off)")
    ap.add_argument("--hold", type=int, default=DEFAULT_HOLD, metavar="N",
                    help="a person's emotion or sentiment changes, with an {\"event\": ...} line, once the new one is "
                         f"seen in N answered windows in a row (default {DEFAULT_HOLD})")
    ap.add_argument("--mqtt", metavar="HOST[:PORT]/TOPIC", help="publish every record on an MQTT broker: TOPIC/window, "
                    "TOPIC/person/<id>, TOPIC/event, TOPIC/summary, TOPIC/status (mqtts:// for TLS; credentials from "
                    f"${USERNAME_ENV} / ${PASSWORD_ENV}; extra mqtt)")
    ap.add_argument("--mqtt-tls", action="store_true", help="--mqtt over TLS (port 8883 unless given)")
    ap.add_argument("--backend", choices=("ort-cpu", "ort-cuda", "ort-trt", "tensorrt"), default="ort-cpu",
                    help="where the encoders run (default ort-cpu); the LLM runs wherever llama.cpp was built for")
    ap.add_argument("--precision", metavar="VARIANT", help="encoder variant: fp32, fp16, int8-dynamic, int8-static "
                    "(default: the bundle's, chosen by the accuracy gate)")
    ap.add_argument("--llm-variant", metavar="TYPE", help="GGUF variant, e.g. q4_k_m (default: the bundle's)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime and llama.cpp")
    ap.add_argument("--ctx", type=int, default=2048, help="LLM context length")
    ap.add_argument("--skip-hash", action="store_true", help="skip the sha256 check of the bundle files at load")
    args = ap.parse_args(argv)
    if args.smooth < 0 or args.smooth != args.smooth:
        ap.error(f"--smooth must be 0 (off) or positive, not {args.smooth}")
    for name in ("window", "hop", "stall", "stage_timeout", "health_timeout", "max_windows", "queue", "hold"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive, not {value}")
    return args


# command-line names that differ from the API's keywords; the rest are the same
RENAMED = {"window": "window_s", "hop": "hop_s", "stall": "stall_s", "stage_timeout": "stage_timeout_s",
           "queue": "queue_size", "ctx": "n_ctx", "precision": "encoder_variant"}
NEGATED = {"no_feature_reuse": "reuse_features", "skip_hash": "verify_hashes"}
CLI_ONLY = {"clip": "python -m runtime.stream --clip is runtime.answer_clip", "json": "the writer: runtime.outputs",
            "profile": "Stream.engine.profile", "bundle": "the pipeline, opened before the stream"}
RUNTIME_KEYS = {f.name for f in fields(RuntimeOptions)}


def api_keywords(args) -> dict:
    """The parsed options as runtime.Stream's keywords (the bundle itself is opened by main)."""
    out = {}
    for name, value in vars(args).items():
        if name in CLI_ONLY or name == "threads":
            continue
        if name in NEGATED:
            out[NEGATED[name]] = not value
        else:
            out[RENAMED.get(name, name)] = value
    return out


def run_clips(pipeline: Pipeline, args, writer) -> int:
    task = get_task(args.task, args.max_new_tokens)
    subtitle = fitted_subtitle(pipeline, args.subtitle, task)
    status = EXIT_OK
    for clip in args.clip:
        try:
            answer = pipeline.answer_file(clip, subtitle, task, args.face_crop)
        except KeyboardInterrupt:
            raise
        except (EdgeError, ImportError) as err:  # one bad file never stops the others
            print(f"error: {err}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        except Exception as err:  # whatever a library raises on a strange file: one line, and on to the next
            print(f"error: {clip}: {type(err).__name__}: {err}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        try:
            writer.window({"source": str(Path(clip)), **answer.to_dict()}) if args.json else print(
                f"{clip}: {', '.join(answer.labels) or answer.text}", flush=True)
        except BrokenPipeError:  # the reader went away (| head): a normal end
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return status
    return status


_loading = threading.Event()  # set while main() loads the bundle
_signalled: list[int] = []  # signals deferred during that load


def _interrupt(signum, frame):
    if _loading.is_set() and frame is not None and frame.f_code is discard_log.__code__:
        # inside llama.cpp's logger while the model loads: ctypes would print and swallow the exception there, so
        # main() raises it once loading returns
        _signalled.append(signum)
        return
    raise KeyboardInterrupt


def _exit_now(signum, frame):
    """A signal while the finished stream frees its models: leave at once. Raised there, KeyboardInterrupt would
    stop llama.cpp or ONNX Runtime half-way through freeing, and the interpreter's own clean-up could then crash."""
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM (how service managers stop a process) both end the stream after its last window
    and summary. Installed explicitly: a process started from a script in the background inherits SIGINT
    ignored, and Python then leaves it so."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _interrupt)


def main(argv=None) -> int:
    stop_on_signals()
    args = parse_args(argv)
    if not args.bundle:
        print("error: no bundle given: pass --bundle DIR or set AFFECTGPT_BUNDLE", file=sys.stderr)
        return EXIT_USAGE
    if args.input and not args.format and "://" not in args.input and not os.path.exists(args.input):
        print(f"error: input not found: {args.input} (pass --format for a device or lavfi graph)", file=sys.stderr)
        return EXIT_USAGE
    if args.annotate and not args.video:
        print("error: --annotate writes a copy of a file: use it with --video", file=sys.stderr)
        return EXIT_USAGE
    if args.max_people is not None and args.max_people < 1:
        print(f"error: --max-people must be at least 1, not {args.max_people}", file=sys.stderr)
        return EXIT_USAGE
    try:  # refused before the model loads: a missing token, an existing --annotate target
        if args.serve:
            from runtime.serve import dashboard_settings

            dashboard_settings(args.serve, args.dashboard_token_file)
        if args.annotate:
            from runtime.annotate import check_target

            check_target(args.annotate, args.video, args.overwrite)
        if args.mqtt:
            from runtime.mqtt import check

            check(args.mqtt, args.mqtt_tls)
    except EdgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.json is None:
        args.json = not sys.stdout.isatty()
    writer = JsonLines() if args.json else Readable()
    _signalled.clear()
    _loading.set()
    try:
        pipeline = open_bundle(args.bundle, threads=args.threads, **{k: v for k, v in api_keywords(args).items()
                                                                     if k in RUNTIME_KEYS})
    except (EdgeError, MemoryError) as err:
        print(f"error: {printable(str(err) or 'out of memory')}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        _loading.clear()
    if _signalled:  # a Ctrl-C / SIGTERM that arrived while llama.cpp was loading
        raise KeyboardInterrupt
    if pipeline.manifest.weights == "random":
        print(f"warning: {printable(args.bundle)} was exported with random weights (a pipeline or latency test): "
              "its answers mean nothing", file=sys.stderr)
    if args.clip:
        return run_clips(pipeline, args, writer)
    stream = None
    try:
        stream = Stream(pipeline=pipeline, writer=writer, **api_keywords(args))
        summary = stream.run()
    except (EdgeError, ValueError, ImportError, OSError, MemoryError) as err:  # MemoryError: the warm-up window
        if stream is not None:
            stream.close()
        print(f"error: {printable(str(err) or 'out of memory')}", file=sys.stderr)
        return EXIT_FAILED
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):  # the stream has ended: nothing is left to stop gracefully
            signal.signal(sig, _exit_now)
    engine = stream.engine
    if args.profile:
        print(engine.profile.table(summary["windows_per_s"], summary["dropped"]), file=sys.stderr)
    status = engine.exit_status(summary)
    if status == EXIT_FAILED:
        problems = summary["input_errors"] or [f"no window could be answered ({summary['windows']} windows, "
                                               f"{summary['failed']} failed)"]
        print("error: " + "; ".join(problems), file=sys.stderr)
    if summary["abandoned"] or engine.records.stuck:
        # a worker is still inside the model (exit without freeing it under its feet), or the record writer is
        # blocked in a write nobody reads (exiting normally would wait on stdout for ever)
        sys.stderr.flush()
        os._exit(status)
    pipeline.close()
    return status


if __name__ == "__main__":
    sys.exit(run_cli(main))  # Ctrl-C outside the stream's own handling (loading, warm-up, --clip): one line, 130
