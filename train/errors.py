"""The train package's error classes: a dataset, checkpoint or run that cannot go on, said in one line. TrainError
is the package's root; each part names its own kind as a subclass (DataError, CheckpointError, PresetError), and
TrainingError is the run's own (a NaN loss, a machine that cannot run it)."""

from runtime.errors import EdgeError


class TrainError(EdgeError):
    pass


class TrainingError(TrainError):
    pass
