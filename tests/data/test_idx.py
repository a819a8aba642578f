"""The IDX reader on small files written by the tests: round trips and clear errors."""

import gzip
import os

import numpy as np
import pytest

import optlab.data as od


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64], ids=str
)
@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gz"])
def test_roundtrip(tmp_path, dtype, suffix):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / f"a-idx3-ubyte{suffix}"
    od.write_idx(path, a)
    b = od.read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_header_layout_matches_the_published_format(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    od.write_idx(path, np.array([7, 2, 1], np.uint8))
    raw = path.read_bytes()
    # magic 0x00000801 (unsigned byte, 1 dimension), then the size 3 big-endian, then data.
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(od.read_idx(path), [0x0102, -2])  # big-endian int16


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"\x00\x00", "too short for an IDX header", id="short"),
        pytest.param(b"\x1f\x8b\x08\x03abcd", "bad magic number", id="gzip-without-gz-name"),
        pytest.param(
            bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 0]), "unknown element type code 0x42", id="bad-type"
        ),
        pytest.param(bytes([0, 0, 8, 3, 0, 0, 0, 2]), "truncated header", id="short-header"),
        pytest.param(
            bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4]),
            r"truncated: shape \(2, 3\) of uint8 needs 6 bytes of data, the file has 4",
            id="truncated-body",
        ),
        pytest.param(
            bytes([0, 0, 8, 1, 0, 0, 0, 1, 5, 6]), "1 unexpected trailing bytes", id="trailing"
        ),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(tmp_path, data, message):
    path = _write(tmp_path, "bad-idx1-ubyte", data)
    with pytest.raises(od.IdxError, match=message) as info:
        od.read_idx(path)
    assert path in str(info.value)


def test_truncated_gzip_stream(tmp_path):
    payload = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 100]) + bytes(100))
    path = _write(tmp_path, "x-idx1-ubyte.gz", payload[: len(payload) // 2])
    with pytest.raises(od.IdxError, match="cannot decompress the gzip stream") as info:
        od.read_idx(path)
    assert path in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        od.read_idx(os.path.join(tmp_path, "nope-idx1-ubyte"))


def test_header_sizes_are_multiplied_exactly(tmp_path):
    # Three sizes of 2**32 - 1 overflow int64 (the product is about 7.9e28): the reader must
    # compare the exact product with the file, not a wrapped-around one.
    big = 2**32 - 1
    header = bytes([0, 0, 8, 3]) + np.array([big] * 3, ">u4").tobytes()
    path = _write(tmp_path, "huge-idx3-ubyte", header + bytes(16))
    with pytest.raises(od.IdxError, match=f"needs {big**3} bytes of data, the file has 16"):
        od.read_idx(path)
    # A product that fits in int64 but exceeds the file is refused the same way.
    header = bytes([0, 0, 0x0E, 2]) + np.array([100_000, 100_000], ">u4").tobytes()
    path = _write(tmp_path, "big-idx2-ubyte", header + bytes(8))
    with pytest.raises(od.IdxError, match=f"needs {100_000**2 * 8} bytes"):
        od.read_idx(path)


def test_a_directory_is_not_an_idx_file(tmp_path):
    (tmp_path / "d-idx1-ubyte.gz").mkdir()
    with pytest.raises(od.IdxError, match=r"d-idx1-ubyte\.gz: is a directory, not an IDX file"):
        od.read_idx(tmp_path / "d-idx1-ubyte.gz")


def test_a_gz_name_on_plain_bytes(tmp_path):
    path = _write(tmp_path, "x-idx1-ubyte.gz", bytes([0, 0, 8, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(od.IdxError, match="cannot decompress the gzip stream") as info:
        od.read_idx(path)
    assert path in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        pytest.param(lambda: od.read_idx(3), TypeError, "read_idx: path must be a path", id="int"),
        pytest.param(lambda: od.read_idx(""), ValueError, "non-empty", id="empty"),
        pytest.param(
            lambda: od.write_idx("/tmp/a-idx1-ubyte", np.zeros(3, np.int64)),
            ValueError,
            "array has dtype int64, which IDX has no element type for",
            id="int64",
        ),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
