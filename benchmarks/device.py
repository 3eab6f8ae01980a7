"""What this machine can run a bundle on, checked against the CPU and timed: one table.

    python -m benchmarks.device --bundle runtime/demo/bundle --out results/device
    python -m benchmarks.device --bundle B --out R --wheel-parts PARTS/      # e.g. onnxruntime-gpu carried in parts
    python -m benchmarks.device pack-wheel onnxruntime_gpu-*.whl --parts-dir PARTS/ --max-mib 60

It looks for ONNX Runtime's CUDA and TensorRT providers, TensorRT's Python API, llama.cpp built with GPU offload and
torch with CUDA; builds the TensorRT engines it needs into the device-side engine cache (never into the bundle); runs
every path it found over a few of the default's sample clips; and compares each accelerated path with the CPU path:
the cosine of the fused rows (the worst clip) and the labels answer token for token. Each probe is isolated: a
missing library or a path that fails is a row that says why, never a traceback. Latency is the p50 over --windows
windows (clips in turn, after one of warm-up). The PyTorch reference runs the bundle's graphs op by op in PyTorch
eager (benchmarks/torch_graph.py), on the CPU and on CUDA.

Where a machine cannot decode the clips (no PyAV) or crop faces, `--save-inputs F.npz` on another machine writes the
encoders' inputs and `--inputs F.npz` reads them, so only the encoders and the LLM run on the device.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.errors import BenchmarkError
from benchmarks.report import cpu_name, write_report
from runtime.errors import UsageError, printable, run_cli

DEMO = Path(__file__).resolve().parents[1] / "runtime" / "demo"
PARTS_SUFFIX = ".parts.json"
ENCODER_PATHS = ("ort-cpu", "ort-cuda", "ort-trt", "tensorrt", "torch-cpu", "torch-cuda")
LLM_PATHS = ("llama-cpu", "llama-cuda")


@dataclass
class Probe:
    name: str
    ok: bool
    detail: str  # the version found, or why not


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return printable(f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": "))


def _probe(name: str, fn) -> Probe:
    """fn() → detail (available) or raises (not available, the message says why)."""
    try:
        return Probe(name, True, fn())
    except _Missing as why:
        return Probe(name, False, str(why))
    except ImportError as err:
        return Probe(name, False, f"no {err.name or 'such'} module" if err.name else _one_line(err))
    except Exception as err:  # a probe reports; it never stops the others
        return Probe(name, False, _one_line(err))


class _Missing(Exception):
    """A probe's plain reason for 'not available'."""


# --- the probes -----------------------------------------------------------------------------------------------

def probe_onnxruntime() -> str:
    import onnxruntime as ort

    return f"onnxruntime {ort.__version__}: {', '.join(ort.get_available_providers())}"


def probe_ort_provider(provider: str) -> str:
    import onnxruntime as ort

    have = ort.get_available_providers()
    if provider not in have:
        raise _Missing(f"onnxruntime {ort.__version__} has no {provider} (it has {', '.join(have)})")
    if provider == "TensorrtExecutionProvider" and not _nvinfer_loads():
        # onnxruntime-gpu lists the provider whether or not TensorRT is installed
        raise _Missing(f"onnxruntime {ort.__version__} has {provider}, but TensorRT's library (libnvinfer) does not load")
    return f"onnxruntime {ort.__version__}"


def _nvinfer_loads() -> bool:
    import ctypes

    with contextlib.suppress(ImportError, OSError):
        import tensorrt  # noqa: F401 — the pip package loads its own copy of the library
        return True
    for name in ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"):
        with contextlib.suppress(OSError):
            ctypes.CDLL(name)
            return True
    return False


def probe_tensorrt() -> str:
    import tensorrt as trt
    from cuda.bindings import runtime as cudart  # noqa: F401 — engines are fed through cuda-python

    return f"TensorRT {trt.__version__}"


def probe_llama() -> str:
    import llama_cpp

    return f"llama-cpp-python {getattr(llama_cpp, '__version__', '?')}"


def probe_llama_cuda() -> str:
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        raise _Missing("llama.cpp was built without GPU offload (rebuild with runtime/llama_build_flags.py --cuda)")
    return f"llama-cpp-python {getattr(llama_cpp, '__version__', '?')} with GPU offload"


def probe_torch_cuda() -> str:
    import torch

    if not torch.cuda.is_available():
        raise _Missing(f"torch {torch.__version__} sees no CUDA device")
    return f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}"


def probe_torch() -> str:
    import onnx  # noqa: F401 — the reference reads the graphs with it
    import torch

    return f"torch {torch.__version__}, onnx {onnx.__version__}"


def probe_media() -> str:
    import av

    return f"PyAV {av.__version__}"


def probe_base_model(bundle: Path) -> str:
    from runtime.manifest import read_manifest

    manifest = read_manifest(bundle, verify_hashes=False)
    if manifest.base_model is None:
        return "the bundle carries its whole LLM"
    from runtime.base_models import resolve

    try:
        return str(resolve(manifest.base_model["key"], manifest.base_model["sha256"], verify_hash=False))
    except Exception as err:
        raise _Missing(str(err)) from None


def probe_all(bundle: Path) -> dict[str, Probe]:
    probes = [
        _probe("onnxruntime", probe_onnxruntime),
        _probe("ort-cuda", lambda: probe_ort_provider("CUDAExecutionProvider")),
        _probe("ort-trt", lambda: probe_ort_provider("TensorrtExecutionProvider")),
        _probe("tensorrt", probe_tensorrt),
        _probe("llama.cpp", probe_llama),
        _probe("llama-cuda", probe_llama_cuda),
        _probe("torch", probe_torch),
        _probe("torch-cuda", probe_torch_cuda),
        _probe("media", probe_media),
        _probe("base model", lambda: probe_base_model(bundle)),
    ]
    return {p.name: p for p in probes}


def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    jetson = Path("/proc/device-tree/model")  # Jetsons have no nvidia-smi
    if jetson.is_file():
        return jetson.read_text(errors="replace").strip("\0\n ")
    return "none found"


# --- wheels carried in parts ----------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack_wheel(wheel: str | os.PathLike, parts_dir: str | os.PathLike, max_mib: float = 60) -> list[Path]:
    """Split `wheel` into parts of at most `max_mib` MiB in `parts_dir`, with NAME.parts.json (sha256 of the whole
    and of each part). → the files written, the listing last."""
    from runtime.atomic import atomic_file, write_text

    wheel, parts_dir = Path(wheel), Path(parts_dir)
    if not wheel.is_file():
        raise BenchmarkError(f"no wheel at {printable(wheel)}")
    if max_mib <= 0:
        raise UsageError("--max-mib must be positive")
    size = int(max_mib * (1 << 20))
    parts_dir.mkdir(parents=True, exist_ok=True)
    written, listing = [], []
    with open(wheel, "rb") as f:
        for i, block in enumerate(iter(lambda: f.read(size), b"")):
            part = parts_dir / f"{wheel.name}.part{i:02d}"
            with atomic_file(part) as tmp:
                Path(tmp).write_bytes(block)
            listing.append({"file": part.name, "bytes": len(block), "sha256": hashlib.sha256(block).hexdigest()})
            written.append(part)
    index = parts_dir / (wheel.name + PARTS_SUFFIX)
    write_text(index, json.dumps({"wheel": wheel.name, "bytes": wheel.stat().st_size, "sha256": _sha256(wheel),
                                  "parts": listing}, indent=2))
    return written + [index]


def reassemble_wheels(parts_dir: str | os.PathLike, into: str | os.PathLike) -> list[Path]:
    """Every wheel listed in `parts_dir` (NAME.parts.json), joined in `into` with each part's and the whole's sha256
    checked, and every whole *.whl beside them. → the wheel files."""
    parts_dir, into = Path(parts_dir), Path(into)
    if not parts_dir.is_dir():
        raise BenchmarkError(f"no wheel parts folder at {printable(parts_dir)}")
    into.mkdir(parents=True, exist_ok=True)
    wheels = []
    for index in sorted(parts_dir.glob("*" + PARTS_SUFFIX)):
        try:
            spec = json.loads(index.read_text())
            name, parts = Path(spec["wheel"]).name, spec["parts"]
        except (ValueError, KeyError, TypeError) as err:
            raise BenchmarkError(f"{printable(index.name)} is not a parts listing: {err}") from None
        target = into / name
        with open(target, "wb") as out:
            for n, part in enumerate(parts, 1):
                path = parts_dir / Path(part["file"]).name
                if not path.is_file():
                    raise BenchmarkError(f"{name}: part {n} of {len(parts)} ({printable(path.name)}) is missing")
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() != part["sha256"]:
                    raise BenchmarkError(f"{name}: part {n} of {len(parts)} ({printable(path.name)}) is damaged (sha256)")
                out.write(data)
        if _sha256(target) != spec["sha256"]:
            raise BenchmarkError(f"{name}: the joined wheel's sha256 is not the listed one")
        wheels.append(target)
    wheels += [w for w in sorted(parts_dir.glob("*.whl"))]
    if not wheels:
        raise BenchmarkError(f"no wheels and no {PARTS_SUFFIX} listings in {printable(parts_dir)}")
    return wheels


def use_wheels(parts_dir: str | os.PathLike) -> list[str]:
    """Join the wheels of `parts_dir` and put them first on sys.path (unpacked into a temporary folder removed at
    exit), before anything imports the modules they hold: onnxruntime-gpu then shadows an installed onnxruntime."""
    tmp = Path(tempfile.mkdtemp(prefix="affectgpt-wheels-"))
    atexit.register(shutil.rmtree, tmp, True)
    site = tmp / "site"
    names = []
    for wheel in reassemble_wheels(parts_dir, tmp / "wheels"):
        try:
            with zipfile.ZipFile(wheel) as z:
                z.extractall(site)
        except zipfile.BadZipFile:
            raise BenchmarkError(f"{printable(wheel.name)} is not a wheel") from None
        names.append(wheel.name)
    sys.path.insert(0, str(site))
    return names


# --- inputs ---------------------------------------------------------------------------------------------------

def sample_list(samples: Path | None, n: int) -> list[tuple[Path, str]]:
    listing = samples or DEMO / "samples" / "samples.jsonl"
    if not listing.is_file():
        raise BenchmarkError(f"no samples listing at {printable(listing)}")
    rows = [json.loads(line) for line in listing.read_text().splitlines() if line.strip()]
    return [(listing.parent / r["file"], r.get("subtitle", "")) for r in rows[:n]]


def load_inputs(bundle: Path, samples: list[tuple[Path, str]], saved: Path | None) -> list[dict]:
    """Per clip: name, subtitle, pixels [T, 3, S, S], clips [K, samples] — decoded and cropped by the runtime's own
    encode path, or read from a file that --save-inputs wrote."""
    if saved is not None:
        try:
            data = np.load(saved)
            names = json.loads(str(data["meta"]))
            return [{"name": m["name"], "subtitle": m["subtitle"], "pixels": data[f"pixels{i}"], "clips": data[f"clips{i}"]}
                    for i, m in enumerate(names)]
        except (OSError, KeyError, ValueError) as err:
            raise BenchmarkError(f"cannot read inputs {printable(saved)}: {err}") from None
    from runtime.encode import encoder_inputs
    from runtime.manifest import read_manifest
    from runtime.media import read_clip_for

    prep = read_manifest(bundle, verify_hashes=False).preprocessing
    out = []
    for path, subtitle in samples:
        clip = read_clip_for(path, prep)
        inputs = encoder_inputs(clip.frames, clip.waveform, prep)
        out.append({"name": path.name, "subtitle": subtitle, "pixels": inputs.pixels, "clips": inputs.clips})
    return out


def save_inputs(path: Path, inputs: list[dict]) -> None:
    from runtime.atomic import atomic_file

    arrays = {"meta": np.array(json.dumps([{"name": x["name"], "subtitle": x["subtitle"]} for x in inputs]))}
    for i, x in enumerate(inputs):
        arrays[f"pixels{i}"], arrays[f"clips{i}"] = x["pixels"], x["clips"]
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


# --- the paths ------------------------------------------------------------------------------------------------

@dataclass
class PathResult:
    name: str
    status: str  # "ran", "not available", "failed"
    detail: str = ""
    provider: str = ""
    stages_ms: dict[str, float] = field(default_factory=dict)  # p50
    cosine_min: float | None = None
    answers_equal: str = ""  # "k/n" against the CPU path
    fused: list = field(default_factory=list, repr=False)
    answers: list = field(default_factory=list, repr=False)


class TorchEncoders:
    """The three graphs in PyTorch eager, with Encoders' interface (same batching)."""

    def __init__(self, bundle: Path, files: dict, device: str, batch: int = 2, threads: int | None = None):
        import torch

        from benchmarks.torch_graph import TorchGraph

        if threads and device == "cpu":
            torch.set_num_threads(threads)
        self.vision, self.audio, self.fusion = (TorchGraph(bundle / files[r].path, device)
                                                for r in ("vision", "audio", "fusion"))
        self.batch = batch
        self.providers = {"all": f"torch {device}"}

    def _batched(self, model, x):
        return np.concatenate([model(x[i:i + self.batch]) for i in range(0, len(x), self.batch)])

    def encode_frames(self, x):
        return self._batched(self.vision, x.astype(np.float32, copy=False))

    def encode_clips(self, x):
        return self._batched(self.audio, x.astype(np.float32, copy=False))

    def fuse(self, face, audio):
        return self.fusion(face[None], audio[None])[0]


def _ort_encoders(bundle: Path, manifest, backend: str, threads: int | None):
    from runtime.encoders import Encoders
    from runtime.manifest import sources_digest

    if backend == "ort-cuda":
        import onnxruntime as ort

        with contextlib.suppress(Exception):  # CUDA / cuDNN from the nvidia-* or torch packages, where they are
            ort.preload_dlls()
    files = manifest.files
    caches = None
    if backend == "ort-trt":
        from runtime.backends import ort_trt_cache

        caches = tuple(ort_trt_cache(sources_digest(bundle, manifest, [r])) for r in ("vision", "audio", "fusion"))
    return Encoders(*(bundle / files[r].path for r in ("vision", "audio", "fusion")), threads, backend,
                    engine_caches=caches)


def _tensorrt_encoders(bundle: Path, manifest, threads: int | None):
    """fp16 engines from the cache, built there first when missing (never inside the bundle)."""
    from quant.tensorrt import build_bundle_engines
    from runtime.backends import engine_folder, engine_key
    from runtime.encoders import Encoders
    from runtime.manifest import check_engines, sources_digest

    folder = engine_folder(sources_digest(bundle, manifest, ["vision", "audio", "fusion"]), engine_key())
    paths = [folder / f"{r}.fp16.engine" for r in ("vision", "audio", "fusion")]
    built = ""
    if not all(p.is_file() for p in paths):
        t = time.perf_counter()
        build_bundle_engines(bundle, "fp16")
        built = f"engines built in {time.perf_counter() - t:.0f} s into {folder}"
    check_engines(folder, paths)
    return Encoders(*paths, threads, "tensorrt"), built


def run_encoders(name: str, make, inputs: list[dict], windows: int) -> PathResult:
    """One warm-up pass over the clips (their fused rows kept), then `windows` timed windows."""
    from runtime.timing import Stopwatch

    try:
        made = make()
        encoders, note = made if isinstance(made, tuple) else (made, "")
        fused = []
        for x in inputs:  # warm-up, and the rows compared
            fused.append(encoders.fuse(encoders.encode_frames(x["pixels"]), encoders.encode_clips(x["clips"])))
        laps: dict[str, list[float]] = {"vision": [], "audio": [], "fusion": []}
        for i in range(windows):
            x = inputs[i % len(inputs)]
            watch = Stopwatch()
            face = encoders.encode_frames(x["pixels"])
            watch.lap("vision")
            audio = encoders.encode_clips(x["clips"])
            watch.lap("audio")
            encoders.fuse(face, audio)
            watch.lap("fusion")
            for k in laps:
                laps[k].append(watch.ms[k])
    except Exception as err:  # a path that cannot run is a row, the others go on
        return PathResult(name, "failed", _one_line(err))
    providers = getattr(encoders, "providers", {})
    return PathResult(name, "ran", note, ", ".join(sorted(set(providers.values()))),
                      {k: float(np.median(v)) for k, v in laps.items()}, fused=fused)


@contextlib.contextmanager
def gpu_layers(n: int):
    """The runtime's LLM takes llama.cpp's default offload; a comparison pins it (0: all on the CPU)."""
    import llama_cpp

    original = llama_cpp.llama_model_default_params

    def params():
        p = original()
        p.n_gpu_layers = n
        return p

    llama_cpp.llama_model_default_params = params
    try:
        yield
    finally:
        llama_cpp.llama_model_default_params = original


def open_cpu_or_gpu_llm(bundle: Path, manifest, threads: int | None, offload: int):
    from runtime.pipeline import RuntimeOptions, open_llm

    with gpu_layers(offload):
        return open_llm(manifest, bundle / manifest.files["llm"].path,
                        RuntimeOptions(threads=threads, n_ctx=1024, verify_hashes=False))


def answer_ids(llm, manifest, fused: list, subtitles: list) -> list[list[int]]:
    """The labels answer's token ids to each clip's fused rows."""
    from runtime.answer import answer
    from runtime.task import TASKS

    return [answer(llm, manifest.prompt, f, s, TASKS["labels"]).token_ids for f, s in zip(fused, subtitles)]


def run_llm(name: str, make, manifest, fused: list, subtitles: list, windows: int) -> tuple[PathResult, object]:
    """The labels answer to each clip's fused rows (token ids kept), then `windows` timed answers.
    → (the row, the LLM, still open, for more answers; None when it failed)."""
    from runtime.answer import answer
    from runtime.task import TASKS

    llm = None
    try:
        llm = make()
        answers = answer_ids(llm, manifest, fused, subtitles)
        prefill, decode = [], []
        for i in range(windows):
            got = answer(llm, manifest.prompt, fused[i % len(fused)], subtitles[i % len(fused)], TASKS["labels"])
            prefill.append(got.timings_ms["llm_prefill"])
            decode.append(got.timings_ms["llm_decode"])
    except Exception as err:
        if llm is not None:
            llm.close()
        return PathResult(name, "failed", _one_line(err)), None
    result = PathResult(name, "ran", f"{len(answers[0])} answer tokens on the first clip",
                        "CPU" if name == "llama-cpu" else "GPU offload",
                        {"prefill": float(np.median(prefill)), "decode": float(np.median(decode))})
    result.answers = answers
    return result, llm


def cosine_min(a: list, b: list) -> float:
    """The lowest cosine of any fused row of any clip (a mean would hide one bad row)."""
    from benchmarks.metrics import cosine

    return float(min(cosine(x[i:i + 1], y[i:i + 1]) for x, y in zip(a, b) for i in range(len(x))))


# --- the whole check ------------------------------------------------------------------------------------------

def check(bundle: Path, inputs: list[dict], windows: int, threads: int | None, probes: dict[str, Probe],
          skip: set[str] = frozenset()) -> dict[str, PathResult]:
    from runtime.manifest import read_manifest

    manifest = read_manifest(bundle, verify_hashes=False)
    results: dict[str, PathResult] = {}
    makers = {
        "ort-cpu": ("onnxruntime", lambda: _ort_encoders(bundle, manifest, "ort-cpu", threads)),
        "ort-cuda": ("ort-cuda", lambda: _ort_encoders(bundle, manifest, "ort-cuda", threads)),
        "ort-trt": ("ort-trt", lambda: _ort_encoders(bundle, manifest, "ort-trt", threads)),
        "tensorrt": ("tensorrt", lambda: _tensorrt_encoders(bundle, manifest, threads)),
        "torch-cpu": ("torch", lambda: TorchEncoders(bundle, manifest.files, "cpu", threads=threads)),
        "torch-cuda": ("torch-cuda", lambda: TorchEncoders(bundle, manifest.files, "cuda")),
    }
    if not probes["torch"].ok:  # torch-cuda needs onnx too, which the torch probe covers
        probes = {**probes, "torch-cuda": Probe("torch-cuda", False, probes["torch"].detail)}
    for name, (needs, make) in makers.items():
        if name in skip:
            results[name] = PathResult(name, "skipped", "--skip")
        elif not probes[needs].ok:
            results[name] = PathResult(name, "not available", probes[needs].detail)
        else:
            results[name] = run_encoders(name, make, inputs, windows)
    reference = reference_of(results)
    subtitles = [x["subtitle"] for x in inputs]
    llm_ok = probes["llama.cpp"].ok and probes["base model"].ok
    why_not = probes["llama.cpp"].detail if not probes["llama.cpp"].ok else probes["base model"].detail
    cpu_llm = None
    try:
        for name, offload, needs in (("llama-cpu", 0, "llama.cpp"), ("llama-cuda", 999, "llama-cuda")):
            if name in skip:
                results[name] = PathResult(name, "skipped", "--skip")
            elif not (llm_ok and probes[needs].ok):
                results[name] = PathResult(name, "not available", probes[needs].detail if llm_ok else why_not)
            elif reference.status != "ran":
                results[name] = PathResult(name, "not available", "no encoder path ran to give it fused rows")
            else:
                make = lambda offload=offload: open_cpu_or_gpu_llm(bundle, manifest, threads, offload)  # noqa: E731
                results[name], llm = run_llm(name, make, manifest, reference.fused, subtitles, windows)
                if name == "llama-cpu":
                    cpu_llm = llm
                elif llm is not None:
                    llm.close()
        cpu_answers = results["llama-cpu"].answers if results["llama-cpu"].status == "ran" else None
        for r in results.values():
            if r.status != "ran":
                continue
            if r.fused and reference.status == "ran":
                r.cosine_min = cosine_min(r.fused, reference.fused)
            if r.name == "llama-cuda" and cpu_answers:
                r.answers_equal = f"{sum(a == b for a, b in zip(r.answers, cpu_answers))}/{len(cpu_answers)}"
            elif r.fused and cpu_answers:
                if r is reference:
                    r.answers_equal = "reference"
                    continue
                try:  # this path's fused rows through the CPU LLM
                    got = answer_ids(cpu_llm, manifest, r.fused, subtitles)
                    r.answers_equal = f"{sum(a == b for a, b in zip(got, cpu_answers))}/{len(cpu_answers)}"
                except Exception as err:
                    r.answers_equal = f"failed: {_one_line(err)}"
    finally:
        if cpu_llm is not None:
            cpu_llm.close()
    return results


def reference_of(results: dict[str, PathResult]) -> PathResult:
    """The path the others are compared with: ONNX Runtime on the CPU, else the PyTorch reference."""
    for name in ("ort-cpu", "torch-cpu", "torch-cuda"):
        if results.get(name) and results[name].status == "ran":
            return results[name]
    return results["ort-cpu"]


def _ms(stages: dict, key: str) -> str:
    return f"{stages[key]:.1f}" if key in stages else "–"


def table(results: dict[str, PathResult], probes: dict[str, Probe], meta: dict) -> str:
    lines = [f"# Device check — {meta['bundle']}", "",
             f"CPU: {meta['cpu']}; GPU: {meta['gpu']}; {meta['threads']} threads; {meta['clips']} clips, "
             f"p50 over {meta['windows']} windows (ms); cosine: the worst clip's fused rows against "
             f"{meta['reference']}; answers: labels task, token for token against llama-cpu.", "",
             "| path | status | runs on | vision | audio | fusion | prefill | decode | fused cosine | answers equal | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        status = r.status if r.status == "ran" else f"**{r.status}**"
        cos = "reference" if r.name == meta["reference"] else (f"{r.cosine_min:.6f}" if r.cosine_min is not None else "–")
        cells = [r.name, status, r.provider or "–", *(_ms(r.stages_ms, k) for k in
                 ("vision", "audio", "fusion", "prefill", "decode")), cos, r.answers_equal or "–",
                 printable(r.detail).replace("|", "/") or ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "What this machine offers:", ""]
    lines += [f"- {p.name}: {p.detail}" if p.ok else f"- {p.name}: not available — {p.detail}" for p in probes.values()]
    if meta.get("wheels"):
        lines.append(f"- carried wheels: {', '.join(meta['wheels'])}")
    return "\n".join(lines)


def summary_lines(results: dict[str, PathResult]) -> list[str]:
    """One plain line per path that did not run."""
    return [f"{r.name}: {r.status} — {r.detail}" for r in results.values() if r.status != "ran"]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pack-wheel"]:
        return pack_main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m benchmarks.device", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=str(DEMO / "bundle"), help="default: the shipped default")
    ap.add_argument("--out", required=True)
    ap.add_argument("--windows", type=int, default=12, help="timed windows per path (clips in turn)")
    ap.add_argument("--clips", type=int, default=3, help="sample clips compared (from --samples)")
    ap.add_argument("--samples", help="samples.jsonl (default: the shipped default's samples)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--wheel-parts", action="append", default=[],
                    help="folder of wheels (whole or split by pack-wheel) to put first on the path; repeatable")
    ap.add_argument("--inputs", help="encoder inputs written by --save-inputs (no decoding here)")
    ap.add_argument("--save-inputs", help="write the encoder inputs of the clips to this .npz")
    ap.add_argument("--skip", default="", help=f"paths not to run, comma-separated ({', '.join(ENCODER_PATHS + LLM_PATHS)})")
    args = ap.parse_args(argv)
    if args.windows < 1 or args.clips < 1:
        raise UsageError("--windows and --clips must be at least 1")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(ENCODER_PATHS + LLM_PATHS)
    if unknown:
        raise UsageError(f"unknown path in --skip: {', '.join(sorted(unknown))}")
    bundle = Path(args.bundle)
    if not (bundle / "manifest.json").is_file():
        raise BenchmarkError(f"no bundle at {printable(bundle)} (no manifest.json)")
    wheels = [w for d in args.wheel_parts for w in use_wheels(d)]  # before anything imports what they hold
    probes = probe_all(bundle)
    if args.inputs is None and not probes["media"].ok:
        raise BenchmarkError(f"cannot decode the clips ({probes['media'].detail}): pass --inputs F.npz written "
                             "by --save-inputs on a machine with PyAV")
    inputs = load_inputs(bundle, sample_list(Path(args.samples) if args.samples else None, args.clips),
                         Path(args.inputs) if args.inputs else None)
    if args.save_inputs:
        save_inputs(Path(args.save_inputs), inputs)
    results = check(bundle, inputs, args.windows, args.threads, probes, skip)
    reference = reference_of(results).name
    meta = {"bundle": printable(args.bundle), "cpu": cpu_name(), "gpu": gpu_name(), "threads": args.threads,
            "clips": len(inputs), "windows": args.windows, "reference": reference, "wheels": wheels,
            "python": sys.version.split()[0]}
    data = {"meta": meta, "probes": {k: asdict(p) for k, p in probes.items()},
            "paths": {k: {f: v for f, v in asdict(r).items() if f not in ("fused", "answers")} | {"answers": r.answers}
                      for k, r in results.items()}}
    print(write_report(args.out, "device", data, table(results, probes, meta)))
    # a path that is missing is a finding; one that broke, or no path at all, is a failure
    broke = any(r.status == "failed" for r in results.values())
    return 1 if broke or not any(r.status == "ran" for r in results.values()) else 0


def pack_main(argv) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.device pack-wheel",
                                 description="Split a wheel into parts small enough to carry, with sha256 listing.")
    ap.add_argument("wheel")
    ap.add_argument("--parts-dir", required=True)
    ap.add_argument("--max-mib", type=float, default=60)
    args = ap.parse_args(argv)
    for path in pack_wheel(args.wheel, args.parts_dir, args.max_mib):
        print(f"{path} {path.stat().st_size / (1 << 20):.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError,)))
