"""CheckpointFiles: shard index parsing, path safety, and reading only what is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _st_writer import encode, write_checkpoint, write_index, write_raw, write_safetensors

import vllm_draft_quant.checkpoint as checkpoint
from vllm_draft_quant.checkpoint import CheckpointFiles, TensorInfo
from vllm_draft_quant.checkpoint import index as index_module
from vllm_draft_quant.errors import CheckpointError

SHARDS = {
    "model-00001-of-00003.safetensors": {
        "model.embed_tokens.weight": ("BF16", [8, 4]),
        "model.layers.0.mlp.weight": ("U8", [4, 2]),
    },
    "model-00002-of-00003.safetensors": {
        "model.layers.1.mlp.weight": ("U8", [4, 2]),
        "model.layers.1.mlp.weight_scale": ("F8_E4M3", [4]),
    },
    "model-00003-of-00003.safetensors": {
        "model.layers.2.eh_proj.weight": ("BF16", [4, 8]),
        "lm_head.weight": ("BF16", [8, 4]),
    },
}
ALL_NAMES = sorted(n for tensors in SHARDS.values() for n in tensors)


def _error(model_dir: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        CheckpointFiles(model_dir)
    return str(info.value)


# -- the package surface -----------------------------------------------------------


def test_all_is_sorted_and_complete() -> None:
    assert checkpoint.__all__ == sorted(checkpoint.__all__)
    for name in checkpoint.__all__:
        assert hasattr(checkpoint, name)


def test_imports_without_torch_or_vllm() -> None:
    code = (
        "import sys\n"
        "for m in ('torch', 'vllm', 'numpy', 'safetensors'):\n"
        "    sys.modules[m] = None\n"
        "import vllm_draft_quant.checkpoint\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('torch', 'vllm', 'numpy')\n"
        "          and sys.modules[m] is not None]\n"
        "assert not loaded, loaded\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# -- sharded checkpoints with an index ------------------------------------------------


def test_weight_names_come_from_the_index_alone(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    files = CheckpointFiles(str(tmp_path))
    assert files.model_dir == tmp_path
    assert files.index_path == tmp_path / "model.safetensors.index.json"
    assert files.weight_names() == ALL_NAMES
    assert files.shards == sorted(SHARDS)
    assert files.files_opened == 1
    assert files.bytes_read == files.index_path.stat().st_size
    assert files.shard_of("lm_head.weight") == "model-00003-of-00003.safetensors"
    assert "lm_head.weight" in files and "nope" not in files


def test_only_the_needed_shards_are_opened(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    files = CheckpointFiles(tmp_path)
    index_bytes = files.bytes_read
    wanted = ["model.layers.1.mlp.weight", "model.layers.1.mlp.weight_scale"]
    got = files.tensors(wanted)
    assert list(got) == wanted
    assert got["model.layers.1.mlp.weight_scale"] == TensorInfo(
        name="model.layers.1.mlp.weight_scale",
        dtype="F8_E4M3",
        shape=(4,),
        data_offsets=(8, 12),
        file="model-00002-of-00003.safetensors",
    )
    assert files.files_opened == 2
    shard = tmp_path / "model-00002-of-00003.safetensors"
    header_bytes = 8 + int.from_bytes(shard.read_bytes()[:8], "little")
    assert files.bytes_read == index_bytes + header_bytes


def test_each_shard_header_is_read_once(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    files = CheckpointFiles(tmp_path)
    files.tensors(["model.layers.1.mlp.weight"])
    files.tensors(["model.layers.1.mlp.weight_scale", "model.layers.1.mlp.weight"])
    assert files.files_opened == 2
    files.tensors(ALL_NAMES)
    assert files.files_opened == 1 + len(SHARDS)
    before = files.bytes_read
    files.tensors(reversed(ALL_NAMES))
    assert (files.files_opened, files.bytes_read) == (1 + len(SHARDS), before)


def test_tensors_of_nothing_opens_nothing(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    files = CheckpointFiles(tmp_path)
    assert files.tensors([]) == {}
    assert files.files_opened == 1


def test_shard_paths_are_normalised(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "sub" / "a.safetensors", {"x": ("U8", [1]), "y": ("U8", [2])})
    write_index(tmp_path, {"x": "./sub/a.safetensors", "y": "sub//a.safetensors"})
    files = CheckpointFiles(tmp_path)
    assert files.shard_of("x") == files.shard_of("y") == "sub/a.safetensors"
    assert files.tensors(["x", "y"])["y"].file == "sub/a.safetensors"
    assert files.files_opened == 2


def test_unknown_name(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    files = CheckpointFiles(tmp_path)
    for call in (lambda: files.shard_of("mtp.fc.weight"), lambda: files.tensors(["mtp.fc.weight"])):
        with pytest.raises(CheckpointError) as info:
            call()
        assert "'mtp.fc.weight'" in str(info.value)


def test_index_names_a_tensor_its_shard_lacks(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "a.safetensors", {"x": ("U8", [1])})
    write_index(tmp_path, {"x": "a.safetensors", "ghost": "a.safetensors"})
    files = CheckpointFiles(tmp_path)
    assert files.tensors(["x"])["x"].shape == (1,)
    with pytest.raises(CheckpointError) as info:
        files.tensors(["ghost"])
    assert "'ghost'" in str(info.value) and "'a.safetensors'" in str(info.value)


def test_corrupt_shard_is_reported_when_read(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    bad = tmp_path / "model-00003-of-00003.safetensors"
    bad.write_bytes(bad.read_bytes()[:-3])
    files = CheckpointFiles(tmp_path)
    files.tensors(["model.layers.1.mlp.weight"])
    with pytest.raises(CheckpointError) as info:
        files.tensors(["lm_head.weight"])
    assert str(bad) in str(info.value)


# -- hostile or broken indexes ------------------------------------------------------------


def test_missing_shard_names_shard_and_tensor(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    (tmp_path / "model-00002-of-00003.safetensors").unlink()
    message = _error(tmp_path)
    assert "'model-00002-of-00003.safetensors'" in message
    assert "model.layers.1.mlp.weight" in message and "missing" in message


def test_shard_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.safetensors").mkdir()
    write_index(tmp_path, {"x": "a.safetensors"})
    assert "not a regular file" in _error(tmp_path)


@pytest.mark.parametrize(
    ("shard", "words"),
    [
        ("../outside.safetensors", "'..'"),
        ("/etc/passwd", "absolute"),
        ("..\\outside.safetensors", "backslash"),
        ("C:\\x.safetensors", "backslash"),
        ("", "not a file name"),
    ],
)
def test_unsafe_shard_paths(tmp_path: Path, shard: str, words: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    write_safetensors(tmp_path / "outside.safetensors", {"x": ("U8", [1])})
    write_index(model, {"x": shard})
    message = _error(model)
    assert words in message and repr(shard) in message


def test_symlinked_shard_outside_the_folder(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    write_safetensors(tmp_path / "outside.safetensors", {"x": ("U8", [1])})
    (model / "a.safetensors").symlink_to(tmp_path / "outside.safetensors")
    write_index(model, {"x": "a.safetensors"})
    assert "outside the model folder" in _error(model)


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not an object"),
        ("{}", "'weight_map'"),
        ('{"weight_map": []}', "'weight_map'"),
        ('{"weight_map": {}}', "'weight_map'"),
        ('{"weight_map": "a.safetensors"}', "'weight_map'"),
        ('{"weight_map": {"x": 1}}', "weight_map['x']"),
        ('{"weight_map": {"x": null}}', "weight_map['x']"),
        ('{"weight_map": {"x": ["a.safetensors"]}}', "weight_map['x']"),
        ('{"weight_map": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        (b'{"weight_map": {"x": "\xff.safetensors"}}', "not UTF-8"),
    ],
)
def test_malformed_index(tmp_path: Path, doc: Any, words: str) -> None:
    index = write_index(tmp_path, doc)
    message = _error(tmp_path)
    assert words in message and str(index) in message


def test_index_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_checkpoint(tmp_path, SHARDS)
    monkeypatch.setattr(index_module, "MAX_INDEX_BYTES", 64)
    assert "64-byte limit" in _error(tmp_path)


def test_index_over_256_mib_is_refused_before_reading(tmp_path: Path) -> None:
    index = tmp_path / "model.safetensors.index.json"
    with index.open("wb") as f:  # sparse
        f.write(b"{")
        f.truncate(257 * 2**20)
    assert "limit" in _error(tmp_path)


def test_index_is_a_dangling_symlink(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "model.safetensors", {"x": ("U8", [1])})
    (tmp_path / "model.safetensors.index.json").symlink_to(tmp_path / "gone.json")
    assert "not found" in _error(tmp_path)


# -- folders without an index -----------------------------------------------------------


def test_single_file_without_index(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "model.safetensors", {"b": ("U8", [1]), "a": ("F32", [2])})
    files = CheckpointFiles(tmp_path)
    assert files.index_path is None
    assert files.weight_names() == ["a", "b"]
    assert files.files_opened == 1
    assert files.tensors(["a"])["a"].file == "model.safetensors"
    assert files.files_opened == 1  # headers read up front are reused


def test_several_files_without_index(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS, index=False)
    write_raw(tmp_path / ".hidden.safetensors", b"garbage")  # ignored, like glob.glob
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    files = CheckpointFiles(tmp_path)
    assert files.weight_names() == ALL_NAMES
    assert files.files_opened == len(SHARDS)
    assert files.shard_of("lm_head.weight") == "model-00003-of-00003.safetensors"


def test_duplicate_tensor_across_files(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "a.safetensors", {"x": ("U8", [1])})
    write_safetensors(tmp_path / "b.safetensors", {"x": ("U8", [1])})
    message = _error(tmp_path)
    assert "'x'" in message and "'a.safetensors'" in message and "'b.safetensors'" in message


def test_corrupt_file_without_index(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "model.safetensors", "{}", length=10**9)
    assert str(path) in _error(tmp_path)


def test_symlinked_file_outside_without_index(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "x.bin").write_bytes(encode({}))
    (model / "model.safetensors").symlink_to(tmp_path / "x.bin")
    assert "outside the model folder" in _error(model)


def test_no_safetensors_at_all(tmp_path: Path) -> None:
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    message = _error(tmp_path)
    assert "no model.safetensors.index.json" in message and str(tmp_path) in message


def test_model_folder_missing(tmp_path: Path) -> None:
    assert "does not exist" in _error(tmp_path / "nope")


def test_model_folder_is_a_file(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "model.safetensors", {"x": ("U8", [1])})
    assert "is not a folder" in _error(path)


# -- lazy index: names_with finds entries in the raw text ------------------------------


def _both(tmp_path: Path, prefixes: tuple[str, ...], subs: tuple[str, ...] = ()
          ) -> tuple[list[str], list[str], CheckpointFiles]:
    lazy = CheckpointFiles(tmp_path, lazy=True)
    eager = CheckpointFiles(tmp_path)
    return sorted(lazy.names_with(prefixes, subs)), sorted(eager.names_with(prefixes, subs)), lazy


def test_lazy_search_equals_the_parsed_index(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    got, want, lazy = _both(tmp_path, ("model.layers.1", "lm_head"), ("eh_proj",))
    assert got == want == ["lm_head.weight", "model.layers.1.mlp.weight",
                           "model.layers.1.mlp.weight_scale", "model.layers.2.eh_proj.weight"]
    assert lazy._map is None  # answered without decoding the whole index
    assert lazy.shard_of("model.layers.1.mlp.weight") == "model-00002-of-00003.safetensors"
    assert lazy.tensors(got)["lm_head.weight"].file == "model-00003-of-00003.safetensors"
    assert lazy.weight_names() == ALL_NAMES  # a full query parses it then


def test_lazy_search_is_exact_about_prefixes_and_keys(tmp_path: Path) -> None:
    """``model.layers.1`` must not match ``model.layers.10``'s siblings by accident of the
    caller: prefixes are literal; values and metadata never count as names."""
    write_safetensors(tmp_path / "a.safetensors", {"x.1.w": ("U8", [1]), "x.10.w": ("U8", [1])})
    doc = {"metadata": {"note": "x.1.w"}, "weight_map": {"x.1.w": "a.safetensors",
                                                          "x.10.w": "a.safetensors"}}
    write_index(tmp_path, json.dumps(doc, indent=None))
    got, want, _ = _both(tmp_path, ("x.1.",))
    assert got == want == ["x.1.w"]


@pytest.mark.parametrize("text", [
    '{"weight_map": {"x.1.w": "a.safetensors", "x\\u002e1.v": "a.safetensors"}}',  # escape
    '{"metadata": {"weight_map": {"x.1.w": "b.safetensors"}}, '
    '"weight_map": {"x.1.w": "a.safetensors"}}',  # a second "weight_map"
    '{"weight_map": {"x.1.w": "a.safetensors"}, "extra": {"x.1.w": "b.safetensors"}}',
])
def test_unusual_indexes_take_the_full_parse(tmp_path: Path, text: str) -> None:
    write_safetensors(tmp_path / "a.safetensors", {"x.1.w": ("U8", [1]), "x.1.v": ("U8", [1])})
    write_index(tmp_path, text)
    got, want, _ = _both(tmp_path, ("x.1.",))
    assert got == want


def test_a_broken_index_fails_the_same_lazily(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    write_index(tmp_path, '{"weight_map": {"model.layers.1.mlp.weight": ')
    lazy = CheckpointFiles(tmp_path, lazy=True)  # not parsed yet
    with pytest.raises(CheckpointError, match="JSON"):
        lazy.names_with(("model.layers.1",))


def test_lazy_search_checks_the_shards_it_returns(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, SHARDS)
    (tmp_path / "model-00002-of-00003.safetensors").unlink()
    lazy = CheckpointFiles(tmp_path, lazy=True)
    assert sorted(lazy.names_with(("lm_head",))) == ["lm_head.weight"]  # shard 3 is fine
    with pytest.raises(CheckpointError, match="missing"):
        lazy.names_with(("model.layers.1",))
