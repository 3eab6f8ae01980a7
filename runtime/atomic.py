"""Atomic writes: a file or a folder is written beside its target under a temporary name and renamed into
place, so a crash or Ctrl-C never leaves a half-written manifest, GGUF, ONNX file, engine or checkpoint
where a reader would take it for a whole one. Every writer in the project goes through here.

What is written gets the permissions the user's umask gives a new file (0644 / 0755 under the usual 022, 0600 /
0700 under 077), as `open()` and `mkdir` would: an annotated recording of faces and voices is as private as the
user made their files."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def umask() -> int:
    """The process's umask, read without changing it where Linux says it (os.umask() sets it, which would race
    with threads creating files)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _place(tmp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, target)
        return
    try:  # a link fails if the target appeared meanwhile: never replaced behind the caller's back
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(f"{target} exists") from None
    except OSError:  # a file system without hard links (FAT, exFAT on an SD card)
        if target.exists():
            raise FileExistsError(f"{target} exists") from None
        os.replace(tmp, target)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, overwrite: bool = True):
    """Yield a temporary path beside `target` to write (with the target's suffix, so that tools that pick a format
    by name see the right one); on success it becomes `target` — replacing it only if `overwrite` — and on error
    it is removed."""
    target = Path(target)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target} exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.partial-", suffix=target.suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        tmp.chmod(0o666 & ~umask())  # mkstemp makes it 0600 whatever the umask
        _place(tmp, target, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_file(target) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = True):
    """Yield a fresh folder beside `target`; on success it replaces `target`, on error it is removed."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists (use --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    tmp.chmod(0o777 & ~umask())  # mkdtemp makes it 0700 whatever the umask
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
