"""python -m quant: quantized variants of a bundle (the accuracy gate that decides which may ship is
`python -m benchmarks.gate`).

    python -m quant gguf --bundle B --types Q8_0,Q6_K,Q5_K_M,Q4_K_M
    python -m quant onnx --bundle B --variants fp16,int8-dynamic,int8-static --clips CLIPS_DIR
    python -m quant.tensorrt --bundle B --precision fp16|int8 [--clips CLIPS_DIR]   # TensorRT engines (GPU)
"""

from __future__ import annotations

import argparse
import logging
import sys

from runtime.errors import run_cli


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
    for p in (g, o):
        p.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s", stream=sys.stderr)
    logging.getLogger("quant").setLevel(logging.INFO if args.verbose else logging.WARNING)

    if args.command == "gguf":
        from quant.gguf import quantize_gguf

        for name, info in quantize_gguf(args.bundle, [t for t in args.types.split(",") if t]).items():
            print(f"{name}: {info['file']} {info['bytes'] / 1e6:.2f} MB"
                  + (f" ({len(info['fallback_tensors'])} tensors fall back)" if info["fallback_tensors"] else ""))
    else:
        from quant.onnx import quantize_onnx

        for name, nbytes in quantize_onnx(args.bundle, [v for v in args.variants.split(",") if v], args.clips).items():
            print(f"{name}: {nbytes / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    # gguf-py and onnxruntime's quantizer refuse a tensor or a file with KeyError / ValueError
    sys.exit(run_cli(main, expected=(OSError, KeyError, ValueError)))
