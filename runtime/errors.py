"""The runtime's one error class: a failure whose message is meant for the user (the CLI prints it on one
line). Each part names its own kind of failure as a subclass, so a caller can catch all of them at once."""


class EdgeError(RuntimeError):
    pass
