"""The export package's one error class: a bundle that cannot be made or fails its own checks, said in one line."""

from runtime.errors import EdgeError


class ExportError(EdgeError):
    pass
