"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST (``*-idx3-ubyte[.gz]``).

Layout (all integers big-endian): two zero bytes; one byte for the element type (``0x08``
unsigned byte, ``0x09`` signed byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E``
float64); one byte for the number of dimensions ``d``; ``d`` uint32 sizes; then the elements in
C order. Files ending in ``.gz`` are decompressed transparently. Anything else (a short
header, an unknown type, a body shorter or longer than the sizes say (their product is computed
exactly, so a header whose sizes overflow 64 bits is refused too), a broken or truncated gzip
stream, a directory) raises :class:`IdxError` naming the file and what is wrong.

References:
  LeCun, Cortes and Burges, The MNIST database (file format section).
  http://yann.lecun.com/exdb/mnist/
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from optlab.core.validation import as_path, check_array

_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {np.dtype(v).newbyteorder("=").str.lstrip("<>|="): k for k, v in _DTYPES.items()}


class IdxError(ValueError):
    """A file is not a well-formed IDX file."""


def _read_bytes(path: str) -> bytes:
    if os.path.isdir(path):
        raise IdxError(f"{path}: is a directory, not an IDX file")
    if not path.endswith(".gz"):
        with open(path, "rb") as f:  # FileNotFoundError / PermissionError name the file
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise IdxError(
            f"{path}: cannot decompress the gzip stream ({err}); the file is "
            f"truncated or corrupt, download it again"
        ) from err


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (optionally gzip-compressed) into a NumPy array.

    Args:
      path: the file.

    Returns:
      The array, in native byte order, with the shape and element type the header gives.

    Raises:
      IdxError: the header or the body is malformed (the message names the file).
      FileNotFoundError: the file does not exist.

    Examples:
      >>> import optlab
      >>> import tempfile, os
      >>> path = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
      >>> optlab.data.write_idx(path, np.array([3, 1, 4], np.uint8))
      >>> print(optlab.data.read_idx(path))
      [3 1 4]
    """
    path = as_path("read_idx", "path", path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IdxError(f"{path}: file too short for an IDX header ({len(data)} bytes, need 4)")
    if data[0] != 0 or data[1] != 0:
        raise IdxError(
            f"{path}: bad magic number 0x{data[:4].hex()} (an IDX file starts with two zero "
            f"bytes); is this an IDX file? (a .gz file must have a .gz name)"
        )
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        raise IdxError(
            f"{path}: unknown element type code 0x{code:02x} in the header "
            f"(known: {', '.join(f'0x{c:02x}' for c in _DTYPES)})"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, the "
            f"file has {len(data)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = _DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow for any header
    body = len(data) - header
    if body < expected:
        raise IdxError(
            f"{path}: truncated: shape {shape} of {dtype.name} needs {expected} bytes "
            f"of data, the file has {body}"
        )
    if body > expected:
        raise IdxError(
            f"{path}: {body - expected} unexpected trailing bytes after the data of shape {shape}"
        )
    arr = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes ``array`` as an IDX file (gzip-compressed if ``path`` ends in ``.gz``).

    Args:
      path: the file to write.
      array: an array of uint8, int8, int16, int32, float32 or float64.
    """
    path = as_path("write_idx", "path", path)
    array = np.asarray(check_array("write_idx", "array", array, kinds="iuf"))
    key = array.dtype.newbyteorder("=").str.lstrip("<>|=")
    if key not in _CODES:
        raise ValueError(
            f"write_idx: array has dtype {array.dtype}, which IDX has no element type for; use "
            f"uint8, int8, "
            f"int16, int32, float32 or float64"
        )
    if array.ndim > 255 or any(s >= 2**32 for s in array.shape):
        raise ValueError(f"write_idx: IDX cannot hold an array of shape {array.shape}")
    code = _CODES[key]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + np.ascontiguousarray(array, _DTYPES[code]).tobytes()
    if os.path.isdir(path):
        raise ValueError(f"write_idx: path {path!r} is a directory; give a file name")
    if path.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)
