"""python -m quant: quantized variants of a bundle, and the accuracy gate that decides which may ship.

    python -m quant gguf --bundle B --types Q8_0,Q6_K,Q5_K_M,Q4_K_M
    python -m quant onnx --bundle B --variants fp16,int8-dynamic,int8-static --clips CLIPS_DIR
    python -m quant report --bundle B --clips CLIPS_DIR [--labels LABELS.csv] --out results/gate
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path


def _tolerances(specs: list[str]) -> dict[str, float]:
    out = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        out[name] = float(value)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m quant", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gguf", help="quantized GGUFs of the bundle's LLM")
    g.add_argument("--bundle", required=True)
    g.add_argument("--types", default="Q8_0,Q4_K_M", help="comma-separated: Q8_0,Q6_K,Q5_K_M,Q5_0,Q4_K_M,Q4_0")
    o = sub.add_parser("onnx", help="fp16 / INT8 encoders and fusion")
    o.add_argument("--bundle", required=True)
    o.add_argument("--variants", default="fp16,int8-dynamic,int8-static")
    o.add_argument("--clips", help="folder of media files to calibrate INT8 static on")
    r = sub.add_parser("report", help="score every variant against the fp32 reference")
    r.add_argument("--bundle", required=True)
    r.add_argument("--clips", required=True, help="folder of media files")
    r.add_argument("--labels", help="CSV with name (file stem) and openset (label list): score against the truth")
    r.add_argument("--subtitle", default="")
    r.add_argument("--tolerance", action="append", default=[], metavar="VARIANT=POINTS", help="e.g. Q4_K_M=2")
    r.add_argument("--wheel-dir")
    r.add_argument("--threads", type=int)
    r.add_argument("--out", default=None, help="folder for gate.md / gate.json (default: BUNDLE/../gate)")
    for p in (g, o, r):
        p.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s", stream=sys.stderr)
    logging.getLogger("quant").setLevel(logging.INFO if args.verbose else logging.WARNING)

    from quant.gguf import QuantError as GGUFError
    from quant.onnx import QuantError as OnnxError
    from runtime.manifest import BundleError
    from runtime.media import MediaError

    try:
        if args.command == "gguf":
            from quant.gguf import quantize_gguf

            for name, info in quantize_gguf(args.bundle, [t for t in args.types.split(",") if t]).items():
                print(f"{name}: {info['file']} {info['bytes'] / 1e6:.2f} MB"
                      + (f" ({len(info['fallback_tensors'])} tensors fall back)" if info["fallback_tensors"] else ""))
        elif args.command == "onnx":
            from quant.onnx import quantize_onnx

            for name, nbytes in quantize_onnx(args.bundle, [v for v in args.variants.split(",") if v], args.clips).items():
                print(f"{name}: {nbytes / 1e6:.2f} MB")
        else:
            from quant.onnx import media_files
            from quant.report import gate, write

            truth = None
            if args.labels:
                from benchmarks.emotion_wheel import string_to_list

                with open(args.labels, newline="", encoding="utf-8") as f:
                    truth = {row["name"]: string_to_list(row["openset"]) for row in csv.DictReader(f)}
            report = gate(args.bundle, media_files(args.clips), args.subtitle, truth, _tolerances(args.tolerance),
                          args.wheel_dir, args.threads)
            print(write(report, Path(args.out) if args.out else Path(args.bundle).parent / "gate"))
    except (GGUFError, OnnxError, BundleError, MediaError, OSError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
