"""A benchmark's results on disk: NAME.json (the data) and NAME.md (the table), each written atomically; and the
CPU as a table's header names it."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from runtime.atomic import write_text

# AMD family 0x19 models by range (the rest of the family is Zen 3), and later families: a cloud CPU often reads only
# "AMD EPYC", and the microarchitecture decides the kernels' peaks.
_AMD_19H_ZEN4 = (range(0x10, 0x20), range(0x60, 0x80), range(0xA0, 0xB0))
_AMD_FAMILIES = {0x17: "Zen / Zen 2", 0x1A: "Zen 5"}


def write_report(out: str | Path, name: str, data, text: str) -> str:
    """Write OUT/NAME.json and OUT/NAME.md (creating OUT). → text, to print."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{name}.json", json.dumps(data, indent=2))
    write_text(out / f"{name}.md", text + "\n")
    return text


def cpu_id(cpuinfo: str | None = None) -> dict:
    """This CPU's name, vendor, family and model (decimal, as lscpu prints them; ARM: implementer and part) and,
    for AMD, its microarchitecture, from /proc/cpuinfo (or the text given). Missing fields are left out."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    out = {"name": fields.get("model name") or platform.processor() or platform.machine()}
    for key, name in (("vendor_id", "vendor"), ("cpu family", "family"), ("model", "model"),
                      ("CPU implementer", "implementer"), ("CPU part", "part")):
        if key in fields:
            out[name] = fields[key]
    if out.get("vendor") == "AuthenticAMD" and out.get("family", "").isdigit() and out.get("model", "").isdigit():
        family, model = int(out["family"]), int(out["model"])
        if family == 0x19:
            out["microarchitecture"] = "Zen 4" if any(model in r for r in _AMD_19H_ZEN4) else "Zen 3"
        elif family in _AMD_FAMILIES:
            out["microarchitecture"] = _AMD_FAMILIES[family]
    return out


def cpu_name(info: dict | None = None) -> str:
    """'AMD EPYC (family 25, model 17: Zen 4)': the name with what tells two CPUs of one name apart."""
    info = cpu_id() if info is None else info
    if "family" in info:
        ident = f"family {info['family']}, model {info.get('model', '?')}"
    elif "part" in info:
        ident = f"implementer {info.get('implementer', '?')}, part {info['part']}"
    else:
        return info["name"]
    if "microarchitecture" in info:
        ident += f": {info['microarchitecture']}"
    return f"{info['name']} ({ident})"
