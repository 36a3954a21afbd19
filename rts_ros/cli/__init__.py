"""Command-line entry points. Shared here: the early check of an output folder."""
from __future__ import annotations

import os
from pathlib import Path

from rts_ros.errors import RTSError


def check_output_dir(path: Path, what: str) -> None:
    """Raise RTSError unless folder ``path`` exists or can be created, and is writable.

    Commands call it before their long work, so that a file in the folder's place or a read-only parent stops
    them at once instead of after the work (or with a traceback). Nothing is created here."""
    path = Path(path)
    # os.path.exists/isdir: False (not PermissionError) inside a folder that cannot be searched
    if os.path.exists(path) and not os.path.isdir(path):
        raise RTSError(f"{what} {path} is a file, not a folder; choose another path")
    existing = path
    while not os.path.exists(existing) and existing != existing.parent:   # nearest ancestor that exists
        existing = existing.parent
    if not os.path.isdir(existing):
        raise RTSError(f"cannot create {what} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RTSError(f"cannot write {what} {path}: {existing} is not writable (permission denied); "
                       "choose a writable folder")
