"""Reading ``.safetensors`` weight files into NumPy arrays, without the ``safetensors`` package.

MiniLM's weights (:mod:`minirec.text.minilm`) come in this format. Only reading is needed, and
the format is small enough to read with ``mmap`` and ``json``.
"""

from __future__ import annotations

import json
import math
import mmap
from pathlib import Path

import numpy as np

_SAFETENSORS_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Map the tensors of a ``.safetensors`` file into read-only NumPy arrays.

    The format is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON giving
    each tensor's ``dtype``, ``shape`` and ``data_offsets`` (begin and end, relative to the
    end of the header), then the raw little-endian data. The arrays view a memory map of the
    file, so nothing is read until it is used. BF16 tensors are widened to float32, which
    copies them.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the header is malformed, names an unknown dtype, or points outside the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"safetensors file {path} not found")

    size = path.stat().st_size
    if size < 8:
        raise ValueError(f"{path}: {size} bytes is too short for a safetensors file; the file is probably truncated")
    with path.open("rb") as handle:
        buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)

    header_length = int.from_bytes(buffer[:8], "little")
    data_start = 8 + header_length
    if data_start > len(buffer):
        raise ValueError(f"{path}: header length {header_length} exceeds the file size {len(buffer)}; the file is damaged")
    try:
        header = json.loads(buffer[8:data_start].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: the safetensors header is not valid JSON ({error}); the file is damaged") from error

    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _tensor_view(path, buffer, data_start, name, entry)
    return tensors


def _tensor_view(path: Path, buffer: mmap.mmap, data_start: int, name: str, entry: dict) -> np.ndarray:
    dtype_name = entry.get("dtype")
    shape = tuple(entry.get("shape", ()))
    begin, end = entry.get("data_offsets", (None, None))
    if begin is None or end is None or not 0 <= begin <= end <= len(buffer) - data_start:
        raise ValueError(f"{path}: tensor {name!r} has data_offsets {entry.get('data_offsets')} outside the data section")

    count = math.prod(shape)
    if dtype_name == "BF16":
        if end - begin != 2 * count:
            raise ValueError(f"{path}: tensor {name!r} of shape {shape} needs {2 * count} bytes, found {end - begin}")
        raw = np.frombuffer(buffer, dtype="<u2", count=count, offset=data_start + begin)
        # A bfloat16 is the upper half of a float32.
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)

    if dtype_name not in _SAFETENSORS_DTYPES:
        raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dtype_name!r}; expected one of {sorted(_SAFETENSORS_DTYPES) + ['BF16']}")
    dtype = _SAFETENSORS_DTYPES[dtype_name]
    if end - begin != dtype.itemsize * count:
        raise ValueError(f"{path}: tensor {name!r} of shape {shape} and dtype {dtype_name} needs {dtype.itemsize * count} bytes, found {end - begin}")
    return np.frombuffer(buffer, dtype=dtype, count=count, offset=data_start + begin).reshape(shape)
