"""The quant package's one error class: a quantization or engine build that cannot be done, said in one line."""

from runtime.errors import EdgeError


class QuantError(EdgeError):
    pass
