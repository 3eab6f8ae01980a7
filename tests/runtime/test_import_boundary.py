"""runtime/ ships to the device: it must run without torch and without the training / export code."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_cli_loads_no_torch():
    code = (
        "import sys, runtime.stream, runtime.pipeline; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'peft', 'train', 'export', 'quant', 'benchmarks')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_sources_import_nothing_from_the_other_side():
    forbidden = {"torch", "transformers", "peft", "train", "export", "quant", "benchmarks"}
    for path in (ROOT / "runtime").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_the_api_is_exported_lazily():
    """`import runtime.manifest` (what training does) loads no media or inference library; `from runtime import
    Stream` does, on first use."""
    code = ("import sys, runtime, runtime.manifest; heavy = ('av', 'onnxruntime', 'llama_cpp', 'flask'); "
            "assert not [m for m in heavy if m in sys.modules], sys.modules.keys(); "
            "from runtime import Stream, answer_clip, open_bundle, WindowAnswer; "
            "assert 'av' in sys.modules and Stream.__module__ == 'runtime.api'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
