"""Which safetensors shard holds which tensor, reading as little as possible.

With ``model.safetensors.index.json`` the weight names come from the index alone
and a shard's header is read only when one of its tensors is asked for. Without
an index, every ``*.safetensors`` file in the folder is read up front.

``CheckpointFiles(folder, lazy=True)`` (what ``plan`` uses) reads the index's bytes
but parses them only when a query needs every name. `names_with` (the draft names
of a plan) then finds its entries by a literal search in the raw text, and checks
only the shards they name: on a DeepSeek-V3 index (92k names) that is a few
milliseconds where decoding the whole JSON takes ~90 ms. Anything unusual (an escape,
a second ``weight_map``, nested objects, no match) takes the full, strict parse,
whose errors are the same as the eager path's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
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


#: where the weight_map object's entries begin / what may follow its closing brace
_MAP_OPEN = re.compile(rb'"weight_map"[ \t\r\n]*:[ \t\r\n]*\{')
_MAP_CLOSE = re.compile(rb'[ \t\r\n]*(?:\}[ \t\r\n]*\Z|,[ \t\r\n]*")')


def _entry(key: bytes) -> re.Pattern[bytes]:
    """A ``"key": "value"`` pair of the weight map whose key matches ``key``."""
    return re.compile(rb'"(' + key + rb')"[ \t\r\n]*:[ \t\r\n]*"([^"]*)"')


class CheckpointFiles:
    """The safetensors shards of one model folder.

    `files_opened` counts every file this object opened (the index and each
    shard header); `bytes_read` counts the index bytes and header bytes read.
    """

    def __init__(self, model_dir: str | os.PathLike[str], *, lazy: bool = False) -> None:
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
        self._raw: bytes | None = None  # index bytes not parsed yet (lazy)
        self._partial: dict[str, str] = {}  # entries found by `names_with` before a parse
        self._map: dict[str, str] | None = None
        if os.path.lexists(index_path):
            self.index_path = index_path
            self._raw = self._read_index_bytes(index_path)
            if not lazy:
                self._map = self._parse_index(index_path)
        else:
            self._map = self._scan_shards()

    @property
    def _weight_map(self) -> dict[str, str]:
        if self._map is None:
            assert self.index_path is not None
            self._map = self._parse_index(self.index_path)
        return self._map

    @_weight_map.setter
    def _weight_map(self, value: dict[str, str]) -> None:
        self._map, self._raw = value, None

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

    def names_with(self, prefixes: Sequence[str], substrings: Sequence[str] = ()) -> list[str]:
        """Every tensor name that starts with one of ``prefixes`` or holds one of
        ``substrings``, in no particular order.

        Before the index is parsed (``lazy``) the names are found in its raw text and
        only their shards are checked; the result is the same as filtering
        `weight_names`."""
        if self._map is None and self._raw is not None:
            found = self._scan_raw(self._raw, prefixes, substrings)
            if found is not None:
                self._partial.update(found)
                return list(found)
        starts = tuple(prefixes)
        names = self._weight_map
        out = [n for n in names if n.startswith(starts)] if starts else []
        if substrings:
            seen = set(out)
            out += [n for n in names if n not in seen and any(s in n for s in substrings)]
        return out

    def shard_of(self, name: str) -> str:
        """The shard file (relative to `model_dir`) that holds tensor `name`."""
        if self._map is None and name in self._partial:
            return self._partial[name]
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

    def _read_index_bytes(self, path: Path) -> bytes:
        self.files_opened += 1
        raw = read_bounded(
            path, what="shard index", max_bytes=MAX_INDEX_BYTES, error=CheckpointError
        )
        self.bytes_read += len(raw)
        return raw

    def _scan_raw(self, raw: bytes, prefixes: Sequence[str],
                  substrings: Sequence[str]) -> dict[str, str] | None:
        """``{name: shard}`` of the matching entries, found in the index's raw text; None
        when the text is not the plain shape this search is exact for (then the caller
        parses the JSON), or when nothing matches (the parse gives the precise answer)."""
        if b"\\" in raw or raw.count(b'"weight_map"') != 1:
            return None
        opened = _MAP_OPEN.search(raw)
        if opened is None or raw.count(b"{", 0, opened.start()) - raw.count(
                b"}", 0, opened.start()) != 1:  # not a key of the top-level object
            return None
        begin = opened.end()
        end = raw.find(b"}", begin)
        # a flat object of strings, closed by the top-level object or followed by a key
        if end < 0 or raw.find(b"{", begin, end) >= 0 or not _MAP_CLOSE.match(raw, end + 1):
            return None
        patterns = [_entry(re.escape(p.encode()) + rb'[^"]*') for p in prefixes]
        patterns += [_entry(rb'[^"]*' + re.escape(s.encode()) + rb'[^"]*') for s in substrings]
        found: dict[str, str] = {}
        try:
            for pat in patterns:
                for m in pat.finditer(raw, begin, end):
                    found[m.group(1).decode()] = m.group(2).decode()
        except UnicodeDecodeError:
            return None
        if not found:
            return None
        checked: dict[str, str] = {}
        for name, shard in found.items():
            if shard not in checked:
                checked[shard] = self._check_shard(shard, name)
            found[name] = checked[shard]
        return found

    def _parse_index(self, path: Path) -> dict[str, str]:
        raw, self._raw = self._raw, None
        assert raw is not None
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
        self._partial.clear()
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
