"""Overrides files: validation with the field named, and most-specific-pattern lookup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from strategies import json_values, module_names

from vllm_draft_quant import Overrides, Scheme, load_overrides
from vllm_draft_quant.errors import ConfigError

SCHEMES = [s.value for s in Scheme if s is not Scheme.UNKNOWN]
_identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,15}", fullmatch=True)


def _write(tmp: Path, name: str, data: Any) -> Path:
    path = tmp / name
    if name.endswith((".yaml", ".yml")):
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
    else:
        path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("overrides")


@pytest.mark.parametrize("name", ["o.json", "o.yaml", "o.yml"])
def test_load_json_and_yaml(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, {"version": 1, "modules": {
        "model.layers.45.shared_head.head": "unquantized", "mtp.fc": "nvfp4"}})
    ov = load_overrides(path)
    assert ov.modules == {"model.layers.45.shared_head.head": Scheme.UNQUANTIZED,
                          "mtp.fc": Scheme.NVFP4}
    assert load_overrides(str(path)) == ov


@given(key=_identifiers.filter(lambda k: k not in ("version", "modules")),
       value=json_values, suffix=st.sampled_from([".json", ".yaml"]))
def test_unknown_keys_are_rejected_naming_the_field(
    scratch: Path, key: str, value: Any, suffix: str
) -> None:
    path = _write(scratch, "unknown" + suffix, {"version": 1, "modules": {}, key: value})
    with pytest.raises(ConfigError) as info:
        load_overrides(path)
    assert repr(key) in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_key_rejected_by_the_model_too() -> None:
    with pytest.raises(pydantic.ValidationError, match="extra"):
        Overrides.model_validate({"modules": {}, "modul": {}})


@pytest.mark.parametrize(
    ("data", "field", "needle"),
    [
        ({"version": 1}, "modules", "Field required"),
        ({"version": 2, "modules": {}}, "version", "version must be 1"),
        ({"version": "one", "modules": {}}, "version", ""),
        ({"modules": {"mtp.fc": "nvfp5"}}, "modules.mtp.fc", ""),
        ({"modules": {"mtp.fc": "unknown"}}, "modules", "not a scheme you can ask for"),
        ({"modules": {" ": "fp8"}}, "modules", "empty"),
        ({"modules": ["mtp.fc"]}, "modules", ""),
        (["mtp.fc"], "<top level>", ""),
        (None, "<top level>", ""),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(
    tmp_path: Path, data: Any, field: str, needle: str
) -> None:
    path = _write(tmp_path, "o.json", data)
    with pytest.raises(ConfigError) as info:
        load_overrides(path)
    msg = str(info.value)
    assert repr(field) in msg and needle in msg and str(path) in msg


@pytest.mark.parametrize(
    ("name", "raw"),
    [("o.json", b"{not json"), ("o.yaml", b"modules: [unclosed"), ("o.json", b"\xff\xfe\x00")],
)
def test_unreadable_files_raise_config_error(tmp_path: Path, name: str, raw: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(ConfigError, match="o\\."):
        load_overrides(path)


def test_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VLLM_DRAFT_QUANT_OVERRIDES"):
        load_overrides(tmp_path / "nope.yaml")


@given(data=json_values)
def test_arbitrary_content_raises_only_config_error(scratch: Path, data: Any) -> None:
    path = _write(scratch, "fuzz.json", data)
    try:
        ov = load_overrides(path)
    except ConfigError:
        return
    assert isinstance(ov, Overrides)


def test_overrides_are_frozen() -> None:
    ov = Overrides(modules={"mtp.fc": Scheme.FP8})
    with pytest.raises(pydantic.ValidationError):
        ov.version = 2  # type: ignore[misc]


# ---------------------------------------------------------------------- lookup
def test_exact_beats_glob_and_longer_glob_beats_shorter() -> None:
    ov = Overrides(modules={
        "model.layers.45.*": Scheme.FP8,
        "model.layers.45.mlp.*": Scheme.NVFP4,
        "model.layers.45.mlp.down_proj": Scheme.UNQUANTIZED,
    })
    assert ov.lookup(["model.layers.45.mlp.down_proj"]) == (
        "model.layers.45.mlp.down_proj", Scheme.UNQUANTIZED)
    assert ov.lookup(["model.layers.45.mlp.up_proj"]) == ("model.layers.45.mlp.*", Scheme.NVFP4)
    assert ov.lookup(["model.layers.45.self_attn.o_proj"]) == ("model.layers.45.*", Scheme.FP8)
    assert ov.lookup(["model.layers.46.mlp.up_proj"]) is None


def test_equally_specific_disagreeing_patterns_are_an_error() -> None:
    ov = Overrides(modules={"model.layers.45.*.q_proj": Scheme.FP8,
                            "model.layers.45.self_at*": Scheme.NVFP4})
    with pytest.raises(ConfigError, match="more specific"):
        ov.lookup(["model.layers.45.self_attn.q_proj"])
    agree = Overrides(modules={"a.*.q_proj": Scheme.FP8, "a.self_*.c": Scheme.FP8})
    assert agree.lookup(["a.self_attn.q_proj"]) == ("a.*.q_proj", Scheme.FP8)


def test_a_pattern_matches_runtime_or_checkpoint_names() -> None:
    ov = Overrides(modules={"model.layers.45.mtp_block.self_attn.qkv_proj": Scheme.FP8,
                            "model.layers.45.self_attn.o_proj": Scheme.NVFP4})
    assert ov.lookup(["model.layers.45.self_attn.q_proj", "model.layers.45.self_attn.k_proj",
                      "model.layers.45.mtp_block.self_attn.qkv_proj"])[1] is Scheme.FP8  # type: ignore[index]
    assert ov.lookup(["model.layers.45.self_attn.o_proj",
                      "model.layers.45.mtp_block.self_attn.o_proj"])[1] is Scheme.NVFP4  # type: ignore[index]


@given(
    patterns=st.dictionaries(
        module_names | module_names.map(lambda n: n + "*") | module_names.map(
            lambda n: "*." + n.rsplit(".", 1)[-1]),
        st.sampled_from(SCHEMES), max_size=6),
    names=st.lists(module_names, min_size=1, max_size=3),
    data=st.data(),
)
def test_lookup_does_not_depend_on_pattern_order(
    patterns: dict[str, str], names: list[str], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(list(patterns.items())))

    def answer(items: list[tuple[str, str]]) -> object:
        ov = Overrides.model_validate({"modules": dict(items)})
        try:
            hit = ov.lookup(names)
        except ConfigError:
            return "conflict"
        return None if hit is None else hit[1]  # the pattern reported may tie; the scheme never

    assert answer(order) == answer(list(patterns.items()))


# ------------------------------------------------------ issue 18: bounded, strict reading
_SAFE_LOAD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from vllm_draft_quant import load_overrides
from vllm_draft_quant.errors import ConfigError
try:
    load_overrides(sys.argv[1])
except ConfigError as e:
    print("ConfigError:", e)
    sys.exit(0)
print("accepted")
sys.exit(1)
"""


def _load_in_child(path: Path) -> str:
    """load_overrides in a child with a 2 GB memory cap and a time limit: a hostile file
    must end in one ConfigError, not a MemoryError, a hang or minutes of work."""
    r = subprocess.run([sys.executable, "-c", _SAFE_LOAD, str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr[-500:])
    assert r.stdout.count("\n") == 1
    return r.stdout


def test_dev_zero_is_refused() -> None:
    assert "not a regular file" in _load_in_child(Path("/dev/zero"))


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "o.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in _load_in_child(fifo)


def test_folder_is_refused(tmp_path: Path) -> None:
    assert "not a regular file" in _load_in_child(tmp_path)


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text('{"modules": {' + ", ".join(f'"m{i}": "fp8"' for i in range(200_000))
                    + "}}")
    assert "limit" in _load_in_child(path)


def test_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("modules: {m: *a9}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    out = _load_in_child(path)
    assert "alias" in out and str(path) in out


@pytest.mark.parametrize(("name", "text"), [
    ("o.json", '{"version": 1, "modules": {"mtp.fc": "fp8", "mtp.fc": "nvfp4"}}'),
    ("o.json", '{"version": 1, "version": 1, "modules": {}}'),
    ("o.yaml", "version: 1\nmodules:\n  mtp.fc: fp8\n  mtp.fc: nvfp4\n"),
])
def test_duplicate_keys_are_refused(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match="twice") as info:
        load_overrides(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("name", "text"), [
    ("o.json", '{"modules": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("o.yaml", "modules: " + "[" * 5000 + "]" * 5000 + "\n"),
    ("o.json", '{"version": 1' + "0" * 5000 + ', "modules": {}}'),
    ("o.json", '{"version": NaN, "modules": {}}'),
    ("o.yaml", "version: 1\nmodules: !!python/object/apply:os.system [echo hi]\n"),
])
def test_hostile_documents_are_one_config_error(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_overrides(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("hostile", ["/dev/zero", "fifo", "dup"])
def test_cli_exit_2_one_line(hostile: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    from _cli_support import ckpt, run_cli

    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    path = Path("/dev/zero")
    if hostile == "fifo":
        path = tmp_path / "o.json"
        os.mkfifo(path)
    elif hostile == "dup":
        path = tmp_path / "o.json"
        path.write_text('{"modules": {"a": "fp8", "a": "fp8"}}')
    code, out, err = run_cli(capsys, "plan", model, "--overrides", path)
    assert code == 2 and out == "" and err.count("\n") == 1 and str(path) in err


@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".json", ".yaml"]))
def test_arbitrary_bytes_raise_only_config_error(scratch: Path, raw: bytes, suffix: str) -> None:
    path = scratch / ("bytes" + suffix)
    path.write_bytes(raw)
    try:
        load_overrides(path)
    except ConfigError as e:
        assert "\n" not in str(e)
