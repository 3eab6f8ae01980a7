"""The redeploy step: a new bundle against the previous one on held-out clips, shipped only if not worse."""

import json
import shutil

from tests.conftest import ROOT, run_cli

SAMPLES = ROOT / "runtime" / "demo" / "samples"


def test_a_new_bundle_is_shipped_only_if_not_worse(bundle_f16, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("happy", "sad"):
        shutil.copy(SAMPLES / f"{name}.mp4", clips / f"{name}.mp4")
    labels = tmp_path / "heldout.csv"
    labels.write_text('name,openset\nhappy,"[happy]"\nsad,"[sad]"\nelsewhere,"[angry]"\n')
    subs = tmp_path / "subs.csv"
    subs.write_text("name,english\nhappy,I am so glad you came!\nsad,I miss her so much.\n")
    dest = tmp_path / "shipped"
    common = ["benchmarks.gate", "--bundle", str(bundle_f16), "--against", str(bundle_f16), "--clips", str(clips),
              "--labels", str(labels), "--subtitles", str(subs), "--ship", str(dest)]
    result = run_cli(*common, "--out", str(tmp_path / "r1"))
    assert result.returncode == 0, result.stderr
    assert "| previous |" in result.stdout and "| new |" in result.stdout and "not worse" in result.stdout
    assert (dest / "manifest.json").is_file()
    report = json.loads((tmp_path / "r1" / "redeploy.json").read_text())
    assert report["clips"] == 2 and report["not_worse"] and report["shipped"] == str(dest)

    shutil.rmtree(dest)
    result = run_cli(*common, "--max-drop", "-1", "--out", str(tmp_path / "r2"))  # must beat the previous by a point
    assert result.returncode == 1 and result.stderr.startswith("error: the new bundle is worse")
    assert not dest.exists() and "not shipped" in (tmp_path / "r2" / "redeploy.md").read_text()

    result = run_cli("benchmarks.gate", "--bundle", str(bundle_f16), "--against", str(bundle_f16), "--clips", str(clips))
    assert result.returncode == 2 and "--labels" in result.stderr
