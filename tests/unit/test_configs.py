"""load_json_object (bounded, strict JSON) and resolve_inside (path safety)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vllm_draft_quant.checkpoint import load_json_object, resolve_inside
from vllm_draft_quant.errors import CheckpointError, ConfigError

# -- load_json_object -----------------------------------------------------------


def _config_error(path: Path, max_bytes: int = 64 * 2**20) -> str:
    with pytest.raises(ConfigError) as info:
        load_json_object(path, what="config.json", max_bytes=max_bytes)
    message = str(info.value)
    assert str(path) in message and "config.json" in message and "; " in message
    return message


def test_loads_object(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "deepseek_v3", "n": [1, 2]}', encoding="utf-8")
    assert load_json_object(path, what="config.json") == {"model_type": "deepseek_v3", "n": [1, 2]}


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert load_json_object(path, what="config.json") == {"a": 1}


def test_missing_required(tmp_path: Path) -> None:
    assert "not found" in _config_error(tmp_path / "config.json")


def test_missing_optional_is_none(tmp_path: Path) -> None:
    assert (
        load_json_object(tmp_path / "x.json", what="hf_quant_config.json", required=False) is None
    )


def test_present_optional_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    assert load_json_object(tmp_path / "x.json", what="x", required=False) == {}


def test_dangling_symlink_is_not_silently_missing(tmp_path: Path) -> None:
    (tmp_path / "config.json").symlink_to(tmp_path / "gone.json")
    with pytest.raises(ConfigError):
        load_json_object(tmp_path / "config.json", what="config.json", required=False)


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    assert "not a regular file" in _config_error(tmp_path / "config.json")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"a": "\xff"}')
    assert "not UTF-8" in _config_error(path)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_json_object(path, what="config.json")
    assert "line 4, column 1" in str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("text", ["[]", "1", '"s"', "null"])
def test_top_level_not_object(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    assert "not an object" in _config_error(path)


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"a": "' + "x" * 2000 + '"}', encoding="utf-8")
    assert "1024-byte limit" in _config_error(path, max_bytes=1024)


def test_huge_config_default_limit(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with path.open("wb") as f:  # sparse: 65 MiB without writing it
        f.write(b"{")
        f.truncate(65 * 2**20)
    assert "limit" in _config_error(path)


def test_deeply_nested(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}", encoding="utf-8")
    assert "nested too deeply" in _config_error(path)


def test_overlong_integer(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"a": ' + "9" * 10_000 + "}", encoding="utf-8")
    assert "not valid JSON" in _config_error(path)


def test_error_class_can_be_chosen(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(CheckpointError):
        load_json_object(path, what="shard index", error=CheckpointError)


# -- resolve_inside -------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "expected"),
    [("a.safetensors", "a.safetensors"), ("./a.safetensors", "a.safetensors"), ("s/b", "s/b")],
)
def test_resolve_inside_ok(tmp_path: Path, relative: str, expected: str) -> None:
    assert resolve_inside(tmp_path, relative, what="shard") == tmp_path / expected


@pytest.mark.parametrize(
    ("relative", "words"),
    [
        ("../x.safetensors", "'..'"),
        ("sub/../../x.safetensors", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/x.safetensors", "absolute"),
        ("C:x.safetensors", "absolute"),
        ("..\\x.safetensors", "backslash"),
        ("sub\\x.safetensors", "backslash"),
        ("x\x00.safetensors", "NUL"),
        ("", "not a file name"),
        (".", "model folder itself"),
        ("sub/..", "'..'"),
    ],
)
def test_resolve_inside_refuses(tmp_path: Path, relative: str, words: str) -> None:
    with pytest.raises(CheckpointError) as info:
        resolve_inside(tmp_path, relative, what="shard")
    assert words in str(info.value) and str(tmp_path) in str(info.value)


def test_resolve_inside_refuses_non_string(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        resolve_inside(tmp_path, 3, what="shard")  # type: ignore[arg-type]


def test_symlink_leaving_the_folder(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "secret").write_text("x", encoding="utf-8")
    (model / "a.safetensors").symlink_to(tmp_path / "secret")
    with pytest.raises(CheckpointError) as info:
        resolve_inside(model, "a.safetensors", what="shard")
    assert "outside the model folder" in str(info.value)


def test_symlinked_subfolder_leaving_the_folder(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (model / "sub").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(CheckpointError):
        resolve_inside(model, "sub/a.safetensors", what="shard")


def test_symlink_inside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "real.safetensors").write_text("x", encoding="utf-8")
    (tmp_path / "a.safetensors").symlink_to("real.safetensors")
    assert resolve_inside(tmp_path, "a.safetensors", what="shard") == tmp_path / "a.safetensors"


def test_model_folder_reached_through_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.safetensors").write_text("x", encoding="utf-8")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    resolve_inside(tmp_path / "link", "a.safetensors", what="shard")


def test_huggingface_cache_blobs_are_allowed(tmp_path: Path) -> None:
    repo = tmp_path / "models--org--name"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "blobs" / "deadbeef").write_text("x", encoding="utf-8")
    (snapshot / "a.safetensors").symlink_to(Path("..", "..", "blobs", "deadbeef"))
    assert resolve_inside(snapshot, "a.safetensors", what="shard") == snapshot / "a.safetensors"
    (repo / "other").write_text("x", encoding="utf-8")
    (snapshot / "b.safetensors").symlink_to(Path("..", "..", "other"))
    with pytest.raises(CheckpointError):
        resolve_inside(snapshot, "b.safetensors", what="shard")


@pytest.mark.skipif(os.name != "posix", reason="symlink loops")
def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.safetensors").symlink_to("b.safetensors")
    (tmp_path / "b.safetensors").symlink_to("a.safetensors")
    with pytest.raises(CheckpointError):
        resolve_inside(tmp_path, "a.safetensors", what="shard")
