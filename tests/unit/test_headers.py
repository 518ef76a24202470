"""read_header: valid files, every rule of safetensors' tensor.rs, and fuzzing."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from _st_writer import BITS, encode, layout, write_raw, write_safetensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import FUZZ_EXAMPLES

from vllm_draft_quant.checkpoint import SafetensorsHeader, TensorInfo, read_header
from vllm_draft_quant.checkpoint.headers import DTYPE_BITS, MAX_HEADER_BYTES
from vllm_draft_quant.errors import CheckpointError

# -- valid files -------------------------------------------------------------


def test_valid_file(tmp_path: Path) -> None:
    path = write_safetensors(
        tmp_path / "model.safetensors",
        {"a.weight": ("BF16", [4, 8]), "a.weight_scale": ("F8_E4M3", [4]), "b": ("F32", [])},
        metadata={"format": "pt"},
    )
    header = read_header(path)
    assert isinstance(header, SafetensorsHeader)
    assert header.path == path
    assert header.metadata == {"format": "pt"}
    assert set(header.tensors) == {"a.weight", "a.weight_scale", "b"}
    assert header.tensors["a.weight"] == TensorInfo(
        name="a.weight", dtype="BF16", shape=(4, 8), data_offsets=(0, 64), file="model.safetensors"
    )
    assert header.tensors["a.weight_scale"].data_offsets == (64, 68)
    assert header.tensors["b"].shape == ()
    raw_len = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert header.bytes_read == 8 + raw_len


def test_result_is_read_only(tmp_path: Path) -> None:
    header = read_header(write_safetensors(tmp_path / "m.safetensors", {"a": ("U8", [1])}))
    with pytest.raises(TypeError):
        header.tensors["b"] = header.tensors["a"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        header.bytes_read = 0  # type: ignore[misc]


def test_file_name_can_be_given(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "sub" / "x.safetensors", {"a": ("U8", [1])})
    assert read_header(path, file="sub/x.safetensors").tensors["a"].file == "sub/x.safetensors"
    assert read_header(str(path)).tensors["a"].file == "x.safetensors"


def test_tensor_data_is_never_read(tmp_path: Path) -> None:
    # A 4 GiB sparse data section: reading it would be slow and show in bytes_read.
    size = 4 * 2**30
    path = tmp_path / "big.safetensors"
    head = encode({"big": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    with path.open("wb") as f:
        f.write(head)
        f.truncate(len(head) + size)
    header = read_header(path)
    assert header.tensors["big"].shape == (size,)
    assert header.bytes_read == len(head)


@pytest.mark.parametrize("dtype", sorted(BITS))
def test_every_safetensors_dtype(tmp_path: Path, dtype: str) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", {"t": (dtype, [2, 4])})
    info = read_header(path).tensors["t"]
    assert info.dtype == dtype
    assert info.data_offsets == (0, 8 * BITS[dtype] // 8)


def test_dtype_table_matches_writer() -> None:
    assert dict(DTYPE_BITS) == BITS


def test_dtype_table_matches_installed_safetensors(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors")
    for dtype, bits in DTYPE_BITS.items():
        raw = encode(layout({"t": (dtype, [8])})) + bytes(bits)
        assert safetensors.deserialize(raw)[0][1]["dtype"] == dtype


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"__metadata__": None},
        {"__metadata__": {}},
        {"e": {"dtype": "F32", "shape": [0, 7], "data_offsets": [0, 0]}},
        {"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2], "extra": [1, {"x": None}]}},
        {"f4": {"dtype": "F4", "shape": [3, 2], "data_offsets": [0, 3]}},
        {"f6": {"dtype": "F6_E3M2", "shape": [4], "data_offsets": [0, 3]}},
    ],
    ids=["empty", "metadata-null", "metadata-empty", "zero-dim", "extra-field", "f4", "f6"],
)
def test_lenient_where_safetensors_is(tmp_path: Path, header: dict[str, Any]) -> None:
    read_header(write_raw(tmp_path / "m.safetensors", header))


def test_tensors_in_any_key_order(tmp_path: Path) -> None:
    header = layout({"a": ("U8", [3]), "b": ("F32", [2]), "c": ("F16", [1])})
    reordered = {k: header[k] for k in ("c", "a", "b")}
    assert set(read_header(write_raw(tmp_path / "m.safetensors", reordered)).tensors) == {
        "a",
        "b",
        "c",
    }


# -- hostile files: one clear CheckpointError each ----------------------------


def _error(path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        read_header(path)
    message = str(info.value)
    assert str(path) in message
    assert "; " in message  # problem; fix
    return message


def _entry(dtype: Any = "U8", shape: Any = (4,), offsets: Any = (0, 4)) -> dict[str, Any]:
    return {
        "dtype": dtype,
        "shape": list(shape) if isinstance(shape, tuple) else shape,
        "data_offsets": list(offsets) if isinstance(offsets, tuple) else offsets,
    }


@pytest.mark.parametrize("size", [0, 1, 7])
def test_shorter_than_length_prefix(tmp_path: Path, size: int) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"\x01" * size)
    assert "shorter than the 8-byte" in _error(path)


def test_header_length_past_end_of_file(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", "{}", length=1000)
    assert "runs past the end" in _error(path)


def test_truncated_download(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", {"a": ("F32", [64])})
    path.write_bytes(path.read_bytes()[:-10])
    assert "truncated" in _error(path)


@pytest.mark.parametrize("length", [MAX_HEADER_BYTES + 1, 2**63, 2**64 - 1])
def test_header_length_over_100mb(tmp_path: Path, length: int) -> None:
    path = write_raw(tmp_path / "m.safetensors", "{}", length=length)
    message = _error(path)
    assert str(length) in message and "limit" in message


def test_header_not_utf8(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", b'{"\xff\xfe":1}')
    assert "not UTF-8" in _error(path)


@pytest.mark.parametrize(
    "text",
    ["", "{", '{"a":}', "{} x", '{"__metadata__":{"a":NaN}}', '{"a":Infinity}', "1" * 5000],
)
def test_header_not_json(tmp_path: Path, text: str) -> None:
    path = write_raw(tmp_path / "m.safetensors", text.encode())
    message = _error(path)
    assert "not valid JSON" in message or "not an object" in message


@pytest.mark.parametrize("text", ["[]", "1", '"x"', "null", "true"])
def test_header_not_an_object(tmp_path: Path, text: str) -> None:
    assert "not an object" in _error(write_raw(tmp_path / "m.safetensors", text))


def test_deeply_nested_header(tmp_path: Path) -> None:
    text = '{"__metadata__":' + "[" * 100_000 + "]" * 100_000 + "}"
    assert "nested too deeply" in _error(write_raw(tmp_path / "m.safetensors", text))


@pytest.mark.parametrize("entry", [None, 1, "U8", [0, 4]])
def test_entry_not_an_object(tmp_path: Path, entry: Any) -> None:
    message = _error(write_raw(tmp_path / "m.safetensors", {"w": entry}, 4))
    assert "tensor 'w'" in message


@pytest.mark.parametrize("field", ["dtype", "shape", "data_offsets"])
def test_entry_missing_field(tmp_path: Path, field: str) -> None:
    entry = _entry()
    del entry[field]
    message = _error(write_raw(tmp_path / "m.safetensors", {"w": entry}, 4))
    assert f"'{field}'" in message and "tensor 'w'" in message


@pytest.mark.parametrize("dtype", ["F33", "f32", "C128", "U4", "", 8, None, ["U8"]])
def test_bad_dtype(tmp_path: Path, dtype: Any) -> None:
    message = _error(write_raw(tmp_path / "m.safetensors", {"w": _entry(dtype=dtype)}, 4))
    assert "tensor 'w'" in message and repr(dtype) in message and "BF16" in message


@pytest.mark.parametrize("shape", [None, 4, "4", {"0": 4}, [-4], [4.0], [True], [2**64], ["4"]])
def test_bad_shape(tmp_path: Path, shape: Any) -> None:
    message = _error(write_raw(tmp_path / "m.safetensors", {"w": _entry(shape=shape)}, 4))
    assert "tensor 'w' shape" in message


def test_shape_disagrees_with_offsets(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", {"w": _entry("F32", (2,), (0, 4))})
    message = _error(path)
    assert "spans 4 bytes" in message and "needs 8" in message


def test_hostile_shape_fails_fast(tmp_path: Path) -> None:
    shape = [2**64 - 1] * 200_000
    path = write_raw(tmp_path / "m.safetensors", {"w": _entry("U8", shape, (0, 4))}, 4)
    assert "far too few for shape" in _error(path)


def test_sub_byte_dtype_must_end_on_byte(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", {"w": _entry("F4", (3,), (0, 2))}, 2)
    assert "byte boundary" in _error(path)


@pytest.mark.parametrize(
    ("offsets", "data_len", "words"),
    [
        (None, 4, "not a list"),
        ([0], 4, "not [begin, end]"),
        ([0, 4, 4], 4, "not [begin, end]"),
        ([4, 0], 4, "end before they begin"),
        ([-1, 3], 4, "non-negative"),
        ([0, 4.0], 4, "non-negative"),
        ([0, 8], 4, "run past"),
        ([4, 8], 8, "starts at byte 4"),
        ([0, 4], 8, "trailing bytes"),
    ],
)
def test_bad_offsets(tmp_path: Path, offsets: Any, data_len: int, words: str) -> None:
    shape = (4,)
    path = write_raw(tmp_path / "m.safetensors", {"w": _entry("U8", shape, offsets)}, data_len)
    assert words in _error(path)


def test_overlapping_tensors(tmp_path: Path) -> None:
    header = {"a": _entry("U8", (4,), (0, 4)), "b": _entry("U8", (4,), (2, 6))}
    message = _error(write_raw(tmp_path / "m.safetensors", header, 6))
    assert "tensor 'b' starts at byte 2" in message and "'a' ends" in message


@pytest.mark.parametrize(
    "metadata", [[], "pt", 1, {"format": 1}, {"format": None}, {"a": {"b": "c"}}]
)
def test_metadata_not_a_string_map(tmp_path: Path, metadata: Any) -> None:
    message = _error(write_raw(tmp_path / "m.safetensors", {"__metadata__": metadata}))
    assert "__metadata__" in message


def test_lone_surrogate_in_name(tmp_path: Path) -> None:
    text = '{"\\ud800":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'
    assert "surrogate" in _error(write_raw(tmp_path / "m.safetensors", text))


def test_missing_file(tmp_path: Path) -> None:
    message = _error(tmp_path / "nope.safetensors")
    assert "cannot read" in message


def test_directory(tmp_path: Path) -> None:
    assert "not a regular file" in _error(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "pipe.safetensors"
    os.mkfifo(path)
    assert "not a regular file" in _error(path)


def test_os_errors_are_wrapped(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        read_header(tmp_path / "missing.safetensors")
    assert isinstance(info.value.__cause__, OSError)


# -- properties ----------------------------------------------------------------

_names = st.text(min_size=0, max_size=12)
_dims = st.lists(st.integers(0, 5), max_size=3)


@st.composite
def _near_valid_files(draw: st.DrawFn) -> bytes:
    """Mostly-valid headers with one thing possibly bent, plus a data section."""
    dtype = st.sampled_from(sorted(BITS)) | st.sampled_from(["F33", "", "u8"]) | st.integers()
    entries: dict[str, Any] = {}
    offset = 0
    for name in draw(st.lists(_names, max_size=4, unique=True)):
        if name == "__metadata__":
            continue
        d = draw(dtype)
        shape = draw(_dims | st.lists(st.integers(-2, 2**64), max_size=2) | st.none())
        size = (
            BITS[d] * _prod(shape) // 8
            if isinstance(d, str) and d in BITS and isinstance(shape, list)
            else 0
        )
        if size > 4096:  # a huge (or bent) shape: keep the file small
            size = draw(st.integers(0, 16))
        size = draw(st.sampled_from([size, size, size + 1, max(size - 1, 0)]))
        begin = draw(st.sampled_from([offset, offset, offset + 1, 0]))
        entry: dict[str, Any] = {"dtype": d, "shape": shape, "data_offsets": [begin, begin + size]}
        if draw(st.booleans()) and draw(st.booleans()):
            del entry[draw(st.sampled_from(sorted(entry)))]
        entries[name] = entry
        offset = begin + size
    if draw(st.booleans()):
        entries["__metadata__"] = draw(
            st.dictionaries(_names, _names | st.integers(), max_size=2) | st.none()
        )
    data_len = draw(st.sampled_from([offset, offset, offset + 1, max(offset - 1, 0)]))
    return encode(json.dumps(entries)) + bytes(data_len)


def _prod(shape: list[int]) -> int:
    out = 1
    for dim in shape:
        out *= dim
    return max(out, 0)


_files = (
    st.binary(max_size=64)
    | st.binary(max_size=48).map(lambda b: struct.pack("<Q", len(b)) + b)
    | st.builds(
        lambda prefix, junk: prefix + junk,
        st.integers(0, 2**64 - 1).map(lambda n: struct.pack("<Q", n)),
        st.binary(max_size=32),
    )
    | _near_valid_files()
)


def _check_only_checkpoint_error(path: Path, raw: bytes) -> None:
    path.write_bytes(raw)
    try:
        header = read_header(path)
    except CheckpointError:
        return
    assert header.bytes_read <= len(raw)


_fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@settings(_fixture_ok, max_examples=200)
@given(raw=_files)
def test_arbitrary_bytes_raise_only_checkpoint_error(tmp_path: Path, raw: bytes) -> None:
    _check_only_checkpoint_error(tmp_path / "fuzz.safetensors", raw)


@pytest.mark.fuzz
@settings(_fixture_ok, max_examples=FUZZ_EXAMPLES)
@given(raw=_files)
def test_arbitrary_bytes_raise_only_checkpoint_error_fuzz(tmp_path: Path, raw: bytes) -> None:
    _check_only_checkpoint_error(tmp_path / "fuzz.safetensors", raw)


@settings(_fixture_ok, max_examples=300)
@given(raw=_near_valid_files())
def test_agrees_with_safetensors(tmp_path: Path, raw: bytes) -> None:
    """Accept exactly the files the safetensors library itself accepts."""
    safetensors = pytest.importorskip("safetensors")
    path = tmp_path / "diff.safetensors"
    path.write_bytes(raw)
    try:
        theirs = {name: (t["dtype"], tuple(t["shape"])) for name, t in safetensors.deserialize(raw)}
    except Exception:
        theirs = None
    try:
        ours = {n: (t.dtype, t.shape) for n, t in read_header(path).tensors.items()}
    except CheckpointError:
        ours = None
    assert ours == theirs
