"""The CPU as every benchmark table names it: family and model besides the name, which alone says too little."""

from benchmarks.report import cpu_id, cpu_name

GENOA = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n" \
        "flags\t\t: fpu avx2\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n"
TURIN = GENOA.replace("cpu family\t: 25", "cpu family\t: 26").replace("model\t\t: 17", "model\t\t: 2")
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n"


def test_amd_family_and_model_name_the_microarchitecture():
    assert cpu_name(cpu_id(GENOA)) == "AMD EPYC (family 25, model 17: Zen 4)"
    assert cpu_name(cpu_id(TURIN)) == "AMD EPYC (family 26, model 2: Zen 5)"
    milan = cpu_id(GENOA.replace("model\t\t: 17", "model\t\t: 1"))
    assert milan["microarchitecture"] == "Zen 3"


def test_other_cpus_give_what_cpuinfo_has():
    intel = cpu_id(GENOA.replace("AuthenticAMD", "GenuineIntel").replace(": 25", ": 6").replace("AMD EPYC", "Xeon"))
    assert cpu_name(intel) == "Xeon (family 6, model 17)"
    assert "part 0xd0c" in cpu_name(cpu_id(GRAVITON))
    assert cpu_name(cpu_id("")) == cpu_id("")["name"]  # nothing to read: the platform's name alone
