"""The accuracy gate: every quantized variant of a bundle against the fp32 reference on the same clips.

    python -m benchmarks.gate --bundle B --clips CLIPS_DIR [--labels LABELS.csv] --out results/gate
    python -m benchmarks.gate --bundle NEW --against OLD --clips CLIPS_DIR --labels LABELS.csv \
        [--subtitles SUBS.csv] [--ship DEST] --out results/redeploy

Per variant: embedding cosine (encoder variants: vision, audio, fused rows), label agreement with the
reference answers, an MER-UniBench-style OV score, size on disk and latency on this machine. The score is
OV set-level F × 100 against the clips' ground truth when a labels CSV is given, else against the
reference's own answers (so the reference scores 100). A variant whose score drops more than its tolerance
is marked failed and is never chosen as a bundle default.

With --against, two bundles (a fine-tuned one and the one it would replace) answer the same clips with their fp32
graphs, each clip with its own subtitle, and are scored against the truth (OV set-level F and sentiment accuracy);
the new one is "not worse" when neither score drops more than --max-drop points. --ship DEST then writes the new
bundle to DEST (atomically) only if it is not worse, and refuses otherwise.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from benchmarks.emotion_wheel import EmotionWheel, WheelDataError, string_to_list
from benchmarks.errors import BenchmarkError
from benchmarks.metrics import cosine, ov_scores
from benchmarks.report import write_report
from runtime.answer import answer
from runtime.encode import EncoderInputs, encode, encoder_inputs
from runtime.encoders import Encoders
from runtime.errors import UsageError, run_cli
from runtime.llm import LLM
from runtime.manifest import AUDIO, FUSION, LLM as LLM_ROLE, VISION, read_manifest, variant_role, write_manifest
from runtime.media import read_clip_for
from runtime.media_files import media_files
from runtime.pipeline import Pipeline, RuntimeOptions
from runtime.task import TASKS
from runtime.timing import Stopwatch

# Points of score a variant may lose against the reference (configurable on the command line).
DEFAULT_TOLERANCE = {"fp16": 0.5, "Q8_0": 0.5, "Q6_K": 0.5, "int8-dynamic": 1.0, "int8-static": 1.0,
                     "Q5_K_M": 1.0, "Q5_0": 1.0, "Q4_K_M": 1.0, "Q4_0": 1.0}


class Scorer:
    """OV set-level F against a truth; through the official wheels when their tables are there."""

    def __init__(self, wheel_dir: str | None = None):
        try:
            self.wheel = EmotionWheel(wheel_dir)
            _ = self.wheel.format_mapping
        except WheelDataError:
            self.wheel = None
        self.basis = "ov-f-emotion-wheels" if self.wheel else "ov-f-raw-labels"

    def use_wheels_for(self, truth: dict[str, list[str]]) -> None:
        """Score through the wheels only if the truth has words the wheels know (else nothing would count)."""
        if self.wheel is not None and not any(self.wheel.map_labels(labels, "wheel1") for labels in truth.values()):
            self.wheel = None
            self.basis = "ov-f-raw-labels"

    def __call__(self, truth: dict[str, list[str]], pred: dict[str, list[str]]) -> float:
        if self.wheel is not None:
            return 100 * ov_scores(self.wheel, truth, pred)["score"]
        p, r = [], []
        for name, gt in truth.items():
            g, q = set(gt), set(pred.get(name, []))
            if not g:
                continue
            p.append(len(g & q) / len(q) if q else 0.0)
            r.append(len(g & q) / len(g) if q else 0.0)
        P, R = (float(np.mean(p)), float(np.mean(r))) if p else (0.0, 0.0)
        return 100 * (2 * P * R / (P + R) if P + R else 0.0)


def gate_inputs(bundle: str | Path, clip_paths: list[Path]) -> dict[str, EncoderInputs]:
    """Each clip's encoder inputs, made by the runtime's own encode path (faces cropped when the bundle says so)."""
    prep = read_manifest(bundle, verify_hashes=False).preprocessing
    inputs = {}
    for path in clip_paths:
        clip = read_clip_for(path, prep)
        inputs[Path(path).stem] = encoder_inputs(clip.frames, clip.waveform, prep)
    return inputs


def gate(bundle: str | Path, clip_paths: list[Path], subtitle: str = "", truth: dict[str, list[str]] | None = None,
         tolerances: dict[str, float] | None = None, wheel_dir: str | None = None, threads: int | None = None,
         max_new_tokens: int = 32, update_manifest: bool = True) -> dict:
    bundle = Path(bundle)
    tolerances = {**DEFAULT_TOLERANCE, **(tolerances or {})}
    manifest = read_manifest(bundle)
    inputs = gate_inputs(bundle, clip_paths)
    # the labels task: answers that always parse, so the gate measures the model, not the format
    task = TASKS["labels"].with_budget(max_new_tokens)
    reference = Pipeline(bundle, RuntimeOptions(threads=threads, encoder_variant="fp32", llm_variant="",
                                                verify_hashes=False))

    def run_encoders(enc: Encoders):
        feats, ms = [], []
        for x in inputs.values():
            watch = Stopwatch()
            f = encode(enc, x)
            ms.append(watch.total_ms())
            feats.append((f.face, f.audio, f.fused))
        return feats, float(np.median(ms))

    def answer_all(fused_list, llm: LLM):
        labels, ms = {}, []
        for name, fused in zip(inputs, fused_list):
            watch = Stopwatch()
            labels[name] = answer(llm, manifest.prompt, fused, subtitle, task).labels
            ms.append(watch.total_ms())
        return labels, float(np.median(ms))

    ref_feats, ref_enc_ms = run_encoders(reference.encoders)
    ref_fused = [f[2] for f in ref_feats]
    ref_labels, ref_llm_ms = answer_all(ref_fused, reference.llm)
    scorer = Scorer(wheel_dir)
    truth = truth or ref_labels
    scorer.use_wheels_for(truth)
    ref_score = scorer(truth, ref_labels)
    size = lambda roles: sum(manifest.files[r].bytes for r in roles)  # noqa: E731

    rows = [{"variant": "reference", "kind": "reference", "bytes": size([VISION, AUDIO, FUSION, LLM_ROLE]),
             "score": ref_score, "delta": 0.0, "label_agreement": 1.0, "latency_ms": ref_enc_ms + ref_llm_ms,
             "status": "reference"}]
    encoder_variants = sorted({r.split("@", 1)[1] for r in manifest.files if r.startswith(VISION + "@")})
    for variant in encoder_variants:
        roles = [variant_role(b, variant) for b in (VISION, AUDIO, FUSION)]
        enc = Encoders(*(bundle / manifest.files[r].path for r in roles), threads=threads)
        feats, enc_ms = run_encoders(enc)
        labels, _ = answer_all([f[2] for f in feats], reference.llm)
        rows.append(_row(f"encoders@{variant}", "encoders", variant, size(roles), scorer(truth, labels), ref_score,
                         _agreement(labels, ref_labels), enc_ms, tolerances,
                         cosine_vision=float(np.mean([cosine(f[0], r[0]) for f, r in zip(feats, ref_feats)])),
                         cosine_audio=float(np.mean([cosine(f[1], r[1]) for f, r in zip(feats, ref_feats)])),
                         cosine_fused=float(np.mean([cosine(f[2], r[2]) for f, r in zip(feats, ref_feats)])),
                         reference_latency_ms=ref_enc_ms))
    llm_variants = sorted({r.split("@", 1)[1] for r in manifest.files if r.startswith(LLM_ROLE + "@")})
    for variant in llm_variants:
        role = variant_role(LLM_ROLE, variant)
        llm = LLM(bundle / manifest.files[role].path, n_threads=threads)
        labels, llm_ms = answer_all(ref_fused, llm)
        llm.close()
        rows.append(_row(f"llm@{variant}", "llm", variant.upper(), manifest.files[role].bytes, scorer(truth, labels),
                         ref_score, _agreement(labels, ref_labels), llm_ms, tolerances, reference_latency_ms=ref_llm_ms))
    reference.close()

    report = {"bundle": str(bundle), "clips": len(inputs), "score_basis": scorer.basis,
              "truth": "labels csv" if truth is not ref_labels else "reference answers", "rows": rows,
              "tolerances": tolerances}
    if update_manifest:
        report["defaults"] = _update_manifest(bundle, rows)
    return report


def compare(bundle: str | Path, previous: str | Path, clip_paths: list[Path], truth: dict[str, list[str]],
            subtitles: dict[str, str] | None = None, max_drop: float = 0.0, wheel_dir: str | None = None,
            threads: int | None = None) -> dict:
    """Two bundles on the same clips (those the truth names) against the truth. → a report whose rows are the
    previous bundle and the new one, and `not_worse`."""
    from runtime.sentiment import sentiment

    clips = [p for p in clip_paths if Path(p).stem in truth]
    if not clips:
        raise BenchmarkError("none of the clips is named in the labels CSV: nothing to compare on")
    subtitles = subtitles or {}
    scorer = Scorer(wheel_dir)
    scorer.use_wheels_for(truth)
    task = TASKS["labels"]
    rows = []
    for role, path in (("previous", previous), ("new", bundle)):
        pipeline = Pipeline(path, RuntimeOptions(threads=threads, encoder_variant="fp32", llm_variant=""))
        labels, ms = {}, []
        try:
            for clip in clips:
                watch = Stopwatch()
                labels[clip.stem] = pipeline.answer_file(clip, subtitles.get(clip.stem, ""), task).labels
                ms.append(watch.total_ms())
        finally:
            pipeline.close()
        hits = [sentiment(labels[n]) == sentiment(truth[n]) for n in labels]
        rows.append({"variant": role, "bundle": str(path), "score": scorer(truth, labels),
                     "sentiment_accuracy": 100 * float(np.mean(hits)), "latency_ms": float(np.median(ms)),
                     "labels": labels})
    old, new = rows
    not_worse = (new["score"] >= old["score"] - max_drop
                 and new["sentiment_accuracy"] >= old["sentiment_accuracy"] - max_drop)
    return {"bundle": str(bundle), "against": str(previous), "clips": len(clips), "score_basis": scorer.basis,
            "max_drop": max_drop, "rows": rows, "not_worse": not_worse}


def comparison_table(report: dict) -> str:
    lines = [f"New bundle against the previous one: {report['clips']} held-out clips, OV score = {report['score_basis']} "
             "vs the labels CSV", "",
             "| bundle | path | OV F × 100 | sentiment accuracy % | latency ms |", "|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['variant']} | {r['bundle']} | {r['score']:.2f} | {r['sentiment_accuracy']:.1f} | "
                     f"{r['latency_ms']:.0f} |")
    verdict = "not worse" if report["not_worse"] else "worse"
    lines += ["", f"verdict: the new bundle is {verdict} (a drop of at most {report['max_drop']} points is allowed)"]
    if "shipped" in report:
        lines.append(f"shipped to {report['shipped']}" if report["shipped"] else "not shipped: the previous bundle stays")
    return "\n".join(lines)


def ship(bundle: Path, dest: Path) -> None:
    """The new bundle's folder copied to DEST, which it replaces only once complete."""
    import shutil

    from runtime.atomic import atomic_dir

    with atomic_dir(dest) as tmp:
        shutil.copytree(bundle, tmp, dirs_exist_ok=True)


def _agreement(labels: dict, ref: dict) -> float:
    return float(np.mean([labels[n] == ref[n] for n in ref])) if ref else 0.0


def _row(name, kind, tolerance_key, nbytes, score, ref_score, agreement, latency_ms, tolerances, **extra) -> dict:
    tol = tolerances.get(tolerance_key, 1.0)
    delta = ref_score - score
    return {"variant": name, "kind": kind, "bytes": nbytes, "score": score, "delta": delta,
            "label_agreement": agreement, "latency_ms": latency_ms, "tolerance": tol,
            "status": "passed" if delta <= tol else "failed", **extra}


def _update_manifest(bundle: Path, rows: list[dict]) -> dict[str, str]:
    """Record every verdict; defaults = the fastest passed variant of each kind (none if none passed)."""
    manifest = read_manifest(bundle)
    manifest.variants = {r["variant"]: {k: v for k, v in r.items() if k != "variant"} for r in rows
                         if r["kind"] != "reference"}
    defaults = {}
    for kind in ("encoders", "llm"):
        passed = [r for r in rows if r["kind"] == kind and r["status"] == "passed"]
        if passed:
            best = min(passed, key=lambda r: (r["latency_ms"], r["bytes"]))
            defaults[kind] = best["variant"].split("@", 1)[1]
    manifest.defaults = defaults
    write_manifest(bundle, manifest)
    return defaults


def table(report: dict) -> str:
    lines = [f"Accuracy gate: {report['clips']} clips, score = {report['score_basis']} vs {report['truth']}", "",
             "| variant | MB | cos vision | cos audio | cos fused | label agreement | score | Δ | tolerance | latency ms | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        cos = [f"{r[k]:.4f}" if k in r else "" for k in ("cosine_vision", "cosine_audio", "cosine_fused")]
        lines.append(f"| {r['variant']} | {r['bytes'] / 1e6:.2f} | {' | '.join(cos)} | {r['label_agreement']:.2f} | "
                     f"{r['score']:.2f} | {r['delta']:.2f} | {r.get('tolerance', '')} | {r['latency_ms']:.1f} | {r['status']} |")
    if "defaults" in report:
        lines += ["", f"defaults written to the manifest: {report['defaults'] or 'none passed: the reference stays'}"]
    return "\n".join(lines)


def write(report: dict, out: Path) -> str:
    return write_report(out, "gate", report, table(report))


def _tolerances(specs: list[str]) -> dict[str, float]:
    out = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        out[name] = float(value)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gate", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--clips", required=True, help="folder of media files")
    ap.add_argument("--labels", help="CSV with name (file stem) and openset (label list): score against the truth")
    ap.add_argument("--subtitle", default="")
    ap.add_argument("--tolerance", action="append", default=[], metavar="VARIANT=POINTS", help="e.g. Q4_K_M=2")
    ap.add_argument("--wheel-dir", help="emotion-wheel tables (default: the official ones shipped in the package)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", default=None, help="folder for gate.md / gate.json (default: BUNDLE/../gate)")
    ap.add_argument("--against", metavar="BUNDLE", help="compare --bundle with this previous bundle instead of variants")
    ap.add_argument("--subtitles", help="with --against: CSV with name and english, each clip's words")
    ap.add_argument("--max-drop", type=float, default=0.0, help="with --against: points the new bundle may lose")
    ap.add_argument("--ship", metavar="DEST", help="with --against: write the new bundle here only if it is not worse")
    args = ap.parse_args(argv)

    truth = None
    if args.labels:
        with open(args.labels, newline="", encoding="utf-8") as f:
            truth = {row["name"]: string_to_list(row["openset"]) for row in csv.DictReader(f)}
    if args.against:
        return _compare_main(args, truth)
    if args.ship or args.subtitles:
        raise UsageError("--ship and --subtitles go with --against")
    report = gate(args.bundle, media_files(args.clips), args.subtitle, truth, _tolerances(args.tolerance),
                  args.wheel_dir, args.threads)
    print(write(report, Path(args.out) if args.out else Path(args.bundle).parent / "gate"))
    return 0


def _compare_main(args, truth) -> int:
    if truth is None:
        raise UsageError("--against needs --labels: the held-out clips' true labels")
    subtitles = None
    if args.subtitles:
        with open(args.subtitles, newline="", encoding="utf-8") as f:
            subtitles = {row["name"]: row.get("english") or row.get("subtitle") or "" for row in csv.DictReader(f)}
    report = compare(args.bundle, args.against, media_files(args.clips), truth, subtitles, args.max_drop,
                     args.wheel_dir, args.threads)
    if args.ship:
        report["shipped"] = str(args.ship) if report["not_worse"] else None
        if report["not_worse"]:
            ship(Path(args.bundle), Path(args.ship))
    out = Path(args.out) if args.out else Path(args.bundle).parent / "redeploy"
    print(write_report(out, "redeploy", {k: v for k, v in report.items()}, comparison_table(report)))
    if args.ship and not report["not_worse"]:
        raise BenchmarkError(f"the new bundle is worse than {args.against} on the held-out clips: not shipped")
    return 0


if __name__ == "__main__":
    # a labels CSV without its columns (KeyError), a bad --tolerance number (ValueError)
    sys.exit(run_cli(main, expected=(OSError, KeyError, ValueError)))
