"""The training state beside a checkpoint is read back as data only: torch.load(weights_only=True)."""

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_the_rng_state_survives_a_weights_only_load(tmp_path):
    from train.state import rng_state, set_rng_state

    np.random.seed(3)
    random.seed(3)
    torch.manual_seed(3)
    np.random.normal()  # a cached Gaussian is part of numpy's state too
    torch.save({"rng": rng_state()}, tmp_path / "state.pt")
    expected = (np.random.normal(size=3), random.random(), torch.rand(2))
    saved = torch.load(tmp_path / "state.pt", map_location="cpu", weights_only=True)
    set_rng_state(saved["rng"])
    got = (np.random.normal(size=3), random.random(), torch.rand(2))
    assert np.array_equal(got[0], expected[0]) and got[1] == expected[1] and torch.equal(got[2], expected[2])


class Payload:
    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_a_state_file_holding_code_is_refused(tmp_path, capsys):
    from train.errors import TrainingError
    from train.state import load_state

    path = tmp_path / "training_state.pt"
    torch.save({"progress": Payload()}, path)
    with pytest.raises(TrainingError, match="start without --resume"):
        load_state(path)
    assert "this ran" not in capsys.readouterr().out
