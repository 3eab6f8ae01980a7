"""The train package's one error class: a dataset, checkpoint or run that cannot go on, said in one line.
Each part names its own kind as a subclass (DataError, CheckpointError, TrainingError)."""


class TrainError(RuntimeError):
    pass
