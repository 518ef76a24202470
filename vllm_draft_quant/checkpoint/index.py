"""Which safetensors shard holds which tensor, reading as little as possible.

With ``model.safetensors.index.json`` the weight names come from the index alone
and a shard's header is read only when one of its tensors is asked for. Without
an index, every ``*.safetensors`` file in the folder is read up front.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from vllm_draft_quant.checkpoint.configs import parse_json_object, read_bounded, resolve_inside
from vllm_draft_quant.checkpoint.headers import (
    SafetensorsHeader,
    TensorInfo,
    _show,
    read_header,
)
from vllm_draft_quant.errors import CheckpointError

__all__ = ["INDEX_FILE", "MAX_INDEX_BYTES", "CheckpointFiles"]

INDEX_FILE = "model.safetensors.index.json"
MAX_INDEX_BYTES = 256 * 2**20

_FIX_INDEX = "re-download the index, or re-export the checkpoint"


class CheckpointFiles:
    """The safetensors shards of one model folder.

    `files_opened` counts every file this object opened (the index and each
    shard header); `bytes_read` counts the index bytes and header bytes read.
    """

    def __init__(self, model_dir: str | os.PathLike[str]) -> None:
        self.model_dir = Path(model_dir)
        self.files_opened = 0
        self.bytes_read = 0
        self._headers: dict[str, SafetensorsHeader] = {}
        try:
            is_dir = self.model_dir.is_dir()
            exists = is_dir or os.path.lexists(self.model_dir)
        except OSError as e:
            raise CheckpointError(
                f"{self.model_dir}: cannot access the model folder ({e.strerror or e}); "
                "check the path and its permissions"
            ) from e
        if not is_dir:
            problem = "is not a folder" if exists else "does not exist"
            raise CheckpointError(
                f"{self.model_dir}: model folder {problem}; pass the folder holding the "
                "safetensors shards"
            )
        index_path = self.model_dir / INDEX_FILE
        self.index_path: Path | None = None
        if os.path.lexists(index_path):
            self.index_path = index_path
            self._weight_map = self._read_index(index_path)
        else:
            self._weight_map = self._scan_shards()

    # -- public queries ----------------------------------------------------

    @property
    def shards(self) -> list[str]:
        """Shard file names (relative to `model_dir`), sorted."""
        return sorted(set(self._weight_map.values()))

    def weight_names(self) -> list[str]:
        """All tensor names of the checkpoint, sorted."""
        return sorted(self._weight_map)

    def __contains__(self, name: object) -> bool:
        return name in self._weight_map

    def shard_of(self, name: str) -> str:
        """The shard file (relative to `model_dir`) that holds tensor `name`."""
        try:
            return self._weight_map[name]
        except KeyError:
            source = self.index_path or f"the *.safetensors files of {self.model_dir}"
            raise CheckpointError(
                f"{source}: no tensor named {name!r} in this checkpoint; check the name "
                "(see weight_names()) or use a checkpoint that ships it"
            ) from None

    def tensors(self, names: Iterable[str]) -> dict[str, TensorInfo]:
        """Header facts for `names`, opening only the shards that hold them."""
        found: dict[str, TensorInfo] = {}
        for name in names:
            if name in found:
                continue
            shard = self.shard_of(name)
            info = self._header(shard).tensors.get(name)
            if info is None:
                raise CheckpointError(
                    f"{self.index_path}: lists tensor {name!r} in shard {shard!r}, but that "
                    "shard's header has no such tensor; re-download the index and shards "
                    "from the same revision"
                )
            found[name] = info
        return found

    # -- reading -----------------------------------------------------------

    def _header(self, shard: str) -> SafetensorsHeader:
        header = self._headers.get(shard)
        if header is None:
            self.files_opened += 1
            header = read_header(self.model_dir / shard, file=shard)
            self.bytes_read += header.bytes_read
            self._headers[shard] = header
        return header

    def _read_index(self, path: Path) -> dict[str, str]:
        self.files_opened += 1
        raw = read_bounded(
            path, what="shard index", max_bytes=MAX_INDEX_BYTES, error=CheckpointError
        )
        self.bytes_read += len(raw)
        index = parse_json_object(raw, path, what="shard index", error=CheckpointError)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(
                f"{path}: field 'weight_map' is {_show(weight_map)}, not a non-empty object "
                f"mapping tensor names to shard files; {_FIX_INDEX}"
            )
        checked: dict[str, str] = {}  # shard as written -> normalised name
        result: dict[str, str] = {}
        for name, shard in weight_map.items():
            if not isinstance(shard, str):
                raise CheckpointError(
                    f"{path}: weight_map[{_show(name)}] is {_show(shard)}, not a shard file "
                    f"name; {_FIX_INDEX}"
                )
            if shard not in checked:
                checked[shard] = self._check_shard(shard, name)
            result[name] = checked[shard]
        return result

    def _check_shard(self, shard: str, tensor: str) -> str:
        """Validate one shard path named in the index; return its normal form."""
        where = f"the shard of tensor {tensor!r} in {INDEX_FILE}"
        target = resolve_inside(self.model_dir, shard, what=where)
        try:
            is_file = target.is_file()
            exists = is_file or target.exists()
        except OSError as e:
            raise CheckpointError(
                f"{target}: cannot access shard {shard!r} ({e.strerror or e}); check its "
                "permissions"
            ) from e
        if not is_file:
            problem = "is not a regular file" if exists else "is missing"
            raise CheckpointError(
                f"{target}: shard {shard!r}, which holds tensor {tensor!r}, {problem}; "
                "download every shard listed in the index"
            )
        return PurePosixPath(shard).as_posix()

    def _scan_shards(self) -> dict[str, str]:
        try:
            files = sorted(
                p.name
                for p in self.model_dir.glob("*.safetensors")
                if not p.name.startswith(".") and p.is_file()
            )
        except OSError as e:
            raise CheckpointError(
                f"{self.model_dir}: cannot list the model folder ({e.strerror or e}); check "
                "its permissions"
            ) from e
        if not files:
            raise CheckpointError(
                f"{self.model_dir}: no {INDEX_FILE} and no *.safetensors files; pass the "
                "folder that holds the checkpoint's safetensors shards"
            )
        result: dict[str, str] = {}
        for shard in files:
            resolve_inside(self.model_dir, shard, what="a *.safetensors file")
            for name in self._header(shard).tensors:
                if name in result:
                    raise CheckpointError(
                        f"{self.model_dir}: tensor {name!r} is stored in both {result[name]!r} "
                        f"and {shard!r}; remove the stale file or add a {INDEX_FILE}"
                    )
                result[name] = shard
        return result
