"""Which files are media: the suffixes the runtime decodes, the media files of a folder, and a sample's file found
by its name (datasets name their clips without a suffix)."""

from __future__ import annotations

import os
from pathlib import Path

MEDIA_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".ts")


def media_files(folder: str | os.PathLike) -> list[Path]:
    """The media files directly in `folder`, sorted by name; MediaError when there are none."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in MEDIA_SUFFIXES)
    if not files:
        from runtime.media import MediaError

        raise MediaError(f"no media files in {folder}")
    return files


def find_media(folder: str | os.PathLike, name: str) -> Path | None:
    """FOLDER/NAME.mp4 (or another media suffix, in MEDIA_SUFFIXES' order) when such a file exists, else None."""
    return next((p for p in (Path(folder) / f"{name}{s}" for s in MEDIA_SUFFIXES) if p.is_file()), None)
