"""Command line: answer on media with a bundle, one JSON object per line on stdout.

    python -m runtime.stream --video clip.mp4 --bundle bundles/tiny --subtitle "I can't believe it."

Errors are one line on stderr and a non-zero exit status; stdout carries only JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from runtime.encoders import EncoderError
from runtime.llm import LLMError
from runtime.manifest import BundleError
from runtime.media import MediaError
from runtime.pipeline import Pipeline, RuntimeOptions

EXIT_USAGE = 2
EXIT_FAILED = 1


def default_bundle() -> str | None:
    """$AFFECTGPT_BUNDLE when set."""
    return os.environ.get("AFFECTGPT_BUNDLE") or None


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m runtime.stream", description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", action="append", required=True, metavar="FILE",
                    help="a media file any av/FFmpeg build reads (repeat for several)")
    ap.add_argument("--bundle", default=default_bundle(), metavar="DIR",
                    help="bundle folder (default: $AFFECTGPT_BUNDLE)")
    ap.add_argument("--subtitle", default="", help="what is said in the clip (text inserted into the prompt)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime and llama.cpp")
    ap.add_argument("--ctx", type=int, default=2048, help="LLM context length")
    ap.add_argument("--skip-hash", action="store_true", help="skip the sha256 check of the bundle files at load")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.bundle:
        print("error: no bundle given: pass --bundle DIR or set AFFECTGPT_BUNDLE", file=sys.stderr)
        return EXIT_USAGE
    options = RuntimeOptions(threads=args.threads, max_new_tokens=args.max_new_tokens, n_ctx=args.ctx,
                             verify_hashes=not args.skip_hash)
    try:
        pipeline = Pipeline(args.bundle, options)
    except (BundleError, EncoderError, LLMError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    status = 0
    for video in args.video:
        try:
            answer = pipeline.answer_file(video, args.subtitle)
        except (MediaError, EncoderError, LLMError) as err:
            # one bad file never stops the others
            print(f"error: {err}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        record = {"source": str(Path(video)), **answer.to_dict()}
        print(json.dumps(record), flush=True)
    pipeline.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
