"""One error root for the project and one place where a command turns an error into its last line and exit status."""

import pytest

from runtime.errors import EdgeError, UsageError, run_cli


def test_every_package_error_is_an_edge_error_and_keeps_its_builtin_kind():
    from benchmarks.errors import BenchmarkError
    from export.errors import ExportError
    from quant.errors import QuantError
    from runtime.speech import SpeechUnavailable
    from train.checkpoint import CheckpointError
    from train.config import PresetError
    from train.data import DataError
    from train.errors import TrainError, TrainingError
    from train.fer import FerWeightsError

    for kind in (BenchmarkError, ExportError, QuantError, TrainError, TrainingError, DataError, CheckpointError,
                 PresetError, FerWeightsError, SpeechUnavailable):
        assert issubclass(kind, EdgeError), kind
    assert issubclass(FerWeightsError, ValueError) and issubclass(SpeechUnavailable, ImportError)


def _raises(err):
    def main(argv):
        raise err
    return main


@pytest.mark.parametrize("err, status, line", [
    (EdgeError("no bundle here"), 1, "error: no bundle here"),
    (UsageError("--a needs --b"), 2, "error: --a needs --b"),
    (MemoryError(), 1, "error: out of memory"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (OSError("disk full"), 1, "error: disk full"),  # expected by this command
    (EdgeError("name\x1b[2J\nforged line"), 1, "error: name\\x1b[2J\\nforged line"),
])
def test_a_command_ends_with_one_line_and_a_status(err, status, line, capsys):
    assert run_cli(_raises(err), [], expected=(OSError,)) == status
    assert capsys.readouterr().err == line + "\n"


def test_an_unexpected_error_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_cli(_raises(ZeroDivisionError()), [])
    assert run_cli(lambda argv: None, []) == 0 and run_cli(lambda argv: 3, []) == 3
