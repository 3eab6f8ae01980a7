"""python -m train.annotate: annotate a folder of clips, or review an annotated dataset in the browser.

    python -m train.annotate --videos DIR --out DATASET [--llm PATH] [--shard i/n] [--subtitles FILE]
    python -m train.annotate --review DATASET --serve [HOST:]PORT [--dashboard-token-file F] [--dashboard-host NAME]

Each clip's result is written atomically as it is finished: a re-run (after Ctrl-C, a crash, or with more clips in
DIR) repeats no finished clip. --shard i/n takes the clips whose name hashes to i (0 ≤ i < n): n machines or jobs
split a collection with no coordinator, and their outputs merge by copying DATASET/clips/ together.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.errors import UsageError, run_cli
from runtime.media import MediaError
from runtime.media_files import media_files
from train.annotate import dataset as ds


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m train.annotate", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--videos", help="folder of clips (.mp4, .avi, ...)")
    ap.add_argument("--out", help="the dataset folder to write (or to continue)")
    ap.add_argument("--llm", help="an instruction-tuned GGUF for the merge (default: SmolLM2-135M-Instruct, extra annotate)")
    ap.add_argument("--shard", help="i/n: annotate only the clips of shard i of n")
    ap.add_argument("--subtitles", help="CSV with name and english: the words of each clip (else Whisper tiny.en)")
    ap.add_argument("--bundle", help="the bundle whose own answer votes (default: the embedded default)")
    ap.add_argument("--face-bundle", help="the bundle whose vision graph reads faces (default: the embedded default)")
    ap.add_argument("--no-bundle-vote", action="store_true", help="leave the bundle out of the vote")
    ap.add_argument("--min-face", type=float, default=0.5, help="share of frames that must show a face (low-level filter)")
    ap.add_argument("--limit", type=int, help="annotate at most this many new clips, then stop")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--review", metavar="DATASET", help="review an annotated dataset (with --serve)")
    ap.add_argument("--serve", metavar="[HOST:]PORT", help="the review page's address (default host 127.0.0.1)")
    ap.add_argument("--dashboard-token-file", help="file holding the page's token (required off loopback, else "
                    "$AFFECTGPT_DASHBOARD_TOKEN)")
    ap.add_argument("--dashboard-host", action="append", default=[], help="another Host name the page answers to")
    return ap


def annotate(args) -> int:
    from tqdm import tqdm

    from train.annotate.engine import Annotator, read_subtitles

    if not args.videos or not args.out:
        raise UsageError("--videos DIR and --out DATASET go together (or --review DATASET --serve PORT)")
    shard = ds.parse_shard(args.shard)
    if not Path(args.videos).is_dir():
        raise UsageError(f"--videos {args.videos}: not a folder")
    subtitles = read_subtitles(args.subtitles) if args.subtitles else None
    out = Path(args.out)
    clips = [p for p in media_files(args.videos) if ds.in_shard(p.stem, shard)]
    todo = [p for p in clips if not ds.record_path(out, p.stem).is_file()]
    print(f"{len(clips)} clips in shard {shard[0]}/{shard[1]}, {len(clips) - len(todo)} done before", file=sys.stderr)
    if args.limit is not None:
        todo = todo[: args.limit]
    if todo:
        annotator = Annotator(args.llm, args.face_bundle, args.bundle, not args.no_bundle_vote, args.threads,
                              args.min_face)
        try:
            for path in tqdm(todo, desc="clips", disable=args.no_progress):
                subtitle = subtitles.get(path.stem, "") if subtitles is not None else None
                try:
                    record = annotator.annotate(path, subtitle)
                except MediaError as err:  # one broken file is recorded and skipped, never fatal
                    record = {"name": path.stem, "source": str(path), "error": str(err), "kept": False,
                              "low_level_kept": False, "dropped_by": ["media"]}
                if "error" not in record:
                    ds.place_media(path, out, path.stem)
                ds.write_json(ds.record_path(out, path.stem), record)
        finally:
            annotator.close()
    counts = ds.write_tables(out)
    print(json.dumps({"dataset": str(out), **counts, "train_data": ds.train_spec(out)}))
    return 0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.review:
        if not args.serve:
            raise UsageError("--review DATASET needs --serve [HOST:]PORT")
        from train.annotate.review import serve

        return serve(Path(args.review), args.serve, args.dashboard_token_file, args.dashboard_host)
    return annotate(args)


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError,)))
