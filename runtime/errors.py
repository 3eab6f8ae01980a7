"""The project's one error class: a failure whose message is meant for the user, said on one line. Each part names
its own kind of failure as a subclass (runtime: BundleError, MediaError ...; train: TrainError; export: ExportError;
quant: QuantError; benchmarks: BenchmarkError), so a caller can catch all of them at once, and every command line
turns them into one line and an exit status in one place, `run_cli`."""

from __future__ import annotations

import sys
from typing import Callable, Sequence


class EdgeError(RuntimeError):
    exit_status = 1


class UsageError(EdgeError):
    """Options that cannot work together: refused before any work, with argparse's exit status."""

    exit_status = 2


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
            expected: tuple[type[BaseException], ...] = ()) -> int:
    """main(argv) → its exit status. An EdgeError (or one of `expected`, errors a command reports as the user's, such
    as OSError for a file it was given) becomes `error: MESSAGE` on stderr and status 1 (UsageError: 2); running out
    of memory becomes one line too, and Ctrl-C exit 130: a traceback helps the developer, not the user."""
    try:
        return main(argv) or 0
    except EdgeError as err:
        print(f"error: {printable(err)}", file=sys.stderr)
        return err.exit_status
    except MemoryError as err:
        print(f"error: out of memory{': ' + printable(err) if str(err) else ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except expected as err:
        print(f"error: {printable(err)}", file=sys.stderr)
        return 1


def printable(text) -> str:
    """`text` with every character a terminal or a log would act on (line breaks, escape sequences, other control
    and format characters such as bidi overrides) written as its Python escape: a name from a bundle or a stream
    can neither forge a log line nor drive the terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
