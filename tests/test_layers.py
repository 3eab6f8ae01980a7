"""The top-level packages are layers: each imports only the ones below it. The runtime is at the bottom (it
ships to the device), training above it, then export (it reads trained models), quant (it post-processes
bundles: GGUF / ONNX variants and TensorRT engines), and benchmarks at the top (metrics, the accuracy gate,
latency). Every import counts, at module level or inside a function, and so does a higher package started as a
command (`python -m export` run as a subprocess is an upward dependency too)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("runtime", "train", "export", "quant", "benchmarks")  # lowest first


def imported_packages(path: Path) -> set[str]:
    """The top-level project packages a file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


def started_packages(path: Path) -> set[str]:
    """The project packages a file names as a module in a call's arguments: run("export", ...),
    subprocess.run([python, "-m", "quant.onnx"]) — how a command of another package is started."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            for arg in node.args + [e for a in node.args if isinstance(a, (ast.List, ast.Tuple)) for e in a.elts]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and re.fullmatch(r"\w+(\.\w+)*", arg.value):
                    found.add(arg.value.split(".")[0])
    return found & set(LAYERS)


def layer_violations(root: Path) -> list[str]:
    """'FILE imports HIGHER' (or 'starts HIGHER') for every use of a package that sits above the file's own."""
    out = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((root / package).rglob("*.py")):
            for verb, names in (("imports", imported_packages(path)), ("starts", started_packages(path))):
                out += [f"{path.relative_to(root)} {verb} {name}" for name in sorted(names) if LAYERS.index(name) > rank]
    return out


def test_each_package_imports_only_the_layers_below_it():
    assert layer_violations(ROOT) == []


def test_the_check_fails_when_a_lower_package_imports_a_higher_one(tmp_path):
    for package in LAYERS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "export" / "bundle.py").write_text("from runtime.manifest import Manifest\nimport train.model\n")
    (tmp_path / "train" / "recipe.py").write_text("def f():\n    from quant.gguf import quantize_gguf\n")
    (tmp_path / "runtime" / "stream.py").write_text("import benchmarks.metrics as m\n")
    (tmp_path / "export" / "ship.py").write_text("import subprocess, sys\n"
                                                 "subprocess.run([sys.executable, '-m', 'benchmarks.gate'])\n"
                                                 "run('quant', '--bundle', 'b')\nrun('export', 'x')\n")
    assert layer_violations(tmp_path) == ["runtime/stream.py imports benchmarks", "train/recipe.py imports quant",
                                          "export/ship.py starts benchmarks", "export/ship.py starts quant"]
