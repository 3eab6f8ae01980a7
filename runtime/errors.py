"""The runtime's one error class: a failure whose message is meant for the user (the CLI prints it on one
line). Each part names its own kind of failure as a subclass, so a caller can catch all of them at once."""


class EdgeError(RuntimeError):
    pass


def printable(text) -> str:
    """`text` with every character a terminal or a log would act on (line breaks, escape sequences, other control
    and format characters such as bidi overrides) written as its Python escape: a name from a bundle or a stream
    can neither forge a log line nor drive the terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
