"""Atomic file writes: a reader, or a rerun after a crash, finds the old content or the new, never a mix.

Models, checkpoints, metrics, predictions, vectors, caches and reports are written here. The
dataset generator streams its large files through its own writer in :mod:`minirec.synth.mind_files`.
The data go to a temporary file in the same folder, are flushed to disk, and the file is renamed
over the target with ``os.replace``, which is atomic on POSIX and Windows. The temporary file is
removed when writing fails.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write(file)``, a function that writes bytes to an open binary file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 lets the umask decide permissions, as open() would.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8."""
    write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to an uncompressed ``.npz`` file."""
    write_atomically(path, lambda handle: np.savez(handle, **arrays))
