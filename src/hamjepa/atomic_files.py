"""Files written whole or not at all, with the permissions every other file gets (the process umask).

A temporary file in the target's folder is written, given mode ``0o666 & ~umask`` (``tempfile.mkstemp``
creates it owner-only, 0600) and renamed over the target, so an interrupted write never leaves half a file
and the result is as readable as a file written with ``open(path, "w")``.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any


def umask_file_mode() -> int:
    """The mode ``open()`` gives a new file under the current umask (``0o644`` under umask ``022``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None], *, fsync: bool = False) -> Path:
    """Write ``path`` through ``write(binary file)`` atomically, with umask permissions; returns ``path``.

    ``fsync``: flush the data to the disk before the rename (checkpoints: a crash right after the rename must
    not leave an empty file under the final name)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, umask_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def deterministic_safetensors(data: bytes) -> bytes:
    """The same safetensors file with its JSON header written with sorted keys (the ``__metadata__`` dict
    included), so that equal tensors and metadata give equal bytes; the header stays padded to 8 bytes."""
    (n,) = struct.unpack("<Q", data[:8])
    header: dict[str, Any] = json.loads(data[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n :]


def write_safetensors(path: str | Path, tensors: Mapping[str, Any], metadata: Mapping[str, str]) -> Path:
    """Save torch ``tensors`` with ``metadata`` as a byte-reproducible safetensors file with umask
    permissions (:func:`deterministic_safetensors`, :func:`atomic_write`); returns ``path``."""
    from safetensors.torch import save

    data = deterministic_safetensors(save(dict(tensors), metadata=dict(sorted(metadata.items()))))
    return atomic_write(path, lambda fh: fh.write(data))
