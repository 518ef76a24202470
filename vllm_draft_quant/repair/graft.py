"""Graft draft layers (MTP/NextN) from an unquantized checkpoint into one that lacks them.

`plan_graft` decides everything from headers and configs (no tensor data is
read except to compare tensors already present); `apply_graft` writes it as one
`Transaction`: a new shard ``model-mtp-graft.safetensors`` streamed byte range
by byte range from SOURCE, an updated (or new) ``model.safetensors.index.json``,
and ``config.json`` / ``hf_quant_config.json`` with

- the draft layers' entries of every per-layer list restored from SOURCE when
  TARGET's lists were truncated to its own layers (``layer_types``, per-layer
  rope/rotary/swiglu lists, ...), and the draft layer count;
- the exclusions `fixer.compute_fix` computes for the grafted state.

A draft layer is the tensors under its checkpoint root (``model.layers.45.``);
drafters whose layers are numbered from 0 in their own namespace (Qwen3-Next's
``mtp.layers.0``) also own everything else in it (``mtp.fc``, ``mtp.norm``).
A layer already in TARGET with identical tensors is skipped (a second graft
changes nothing); a different one needs ``force``, which replaces it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Literal

from vllm_draft_quant.checkpoint.configs import load_json_object
from vllm_draft_quant.checkpoint.facts import CheckpointFacts, decisions_from_facts, load_facts
from vllm_draft_quant.checkpoint.headers import TensorInfo, read_header
from vllm_draft_quant.checkpoint.index import INDEX_FILE, CheckpointFiles
from vllm_draft_quant.core.evidence import classify, group_by_module
from vllm_draft_quant.core.formats import plain_float
from vllm_draft_quant.core.intent import intent_from_configs
from vllm_draft_quant.core.names import NameMap
from vllm_draft_quant.core.profile import DrafterProfile
from vllm_draft_quant.core.schemes import StoredFormat
from vllm_draft_quant.errors import CheckpointError, ConfigError, MissingDraftWeightsError
from vllm_draft_quant.repair.fixer import CONFIG, HF_QUANT, FixResult, compute_fix, render_json
from vllm_draft_quant.repair.shapes import check_config_shapes
from vllm_draft_quant.repair.shard_io import TensorSource, same_bytes, sources_of, write_shard
from vllm_draft_quant.repair.writer import Transaction

__all__ = ["GRAFT_SHARD", "GraftPlan", "Unit", "apply_graft", "plan_graft"]

GRAFT_SHARD = "model-mtp-graft.safetensors"
#: total bytes -> a context manager that is told the bytes compared so far
CompareProgress = Callable[[int], contextlib.AbstractContextManager[Callable[[int], None]]]
_PACKED = frozenset(f for f in StoredFormat if f.two_per_byte)
_NEW_FILE_STYLE = '{\n  "": 0\n}\n'  # how render_json should format a file we create
_IN_LAYER = re.compile(r"(?:.*\.)?layers\.\d+\.(.+)\Z")


@dataclass
class Unit:
    """One draft layer (or the drafter's shared namespace) and what the graft does with it."""

    label: str
    prefix: str  # tensors under this prefix belong to the unit
    source: list[TensorSource]
    existing: list[str]  # TARGET's tensors under the prefix
    action: Literal["copy", "skip", "replace"] = "copy"


@dataclass
class GraftPlan:
    """Everything `apply_graft` will write; nothing is written while planning."""

    target: Path
    source: Path
    units: list[Unit]
    copy: list[TensorSource]
    shard: str | None
    rewrites: dict[str, list[TensorSource]]  # shard -> tensors it keeps
    deletes: list[str]
    index: dict[str, Any] | None
    configs: dict[str, dict[str, Any]]  # changed JSON files
    originals: dict[str, str]  # original text of every JSON file we may write
    notes: list[str] = field(default_factory=list)
    fix: FixResult | None = None
    backups: dict[str, str | None] = field(default_factory=dict)  # file -> its backup's name

    @property
    def changed(self) -> bool:
        return bool(self.copy or self.rewrites or self.deletes or self.index or self.configs)

    @property
    def bytes_to_write(self) -> int:
        return sum(t.nbytes for t in self.copy) + sum(
            t.nbytes for ts in self.rewrites.values() for t in ts)

    def texts(self) -> dict[str, str]:
        """New text of every JSON file that changes (a new file: indent 2, final newline)."""
        new = dict(self.configs)
        if self.index is not None:
            new[INDEX_FILE] = self.index
        return {f: render_json(self.originals.get(f, _NEW_FILE_STYLE), obj)
                for f, obj in new.items()}


# ------------------------------------------------------------------------------ planning
def _int(cfg: Mapping[str, Any], key: str, where: Path) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{where}: field {key!r} is {v!r}, not an integer; graft needs it to "
                          "check that both checkpoints are the same model")
    return v


def _text_path(config: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, ...]:
    if "num_hidden_layers" in config:
        return ()
    for k in keys:
        if isinstance(config.get(k), dict) and "num_hidden_layers" in config[k]:
            return (k,)
    return ()


def _node(obj: Any, path: Sequence[str]) -> Any:
    for k in path:
        obj = obj[k]
    return obj


def _namespace(facts: CheckpointFacts) -> str | None:
    """The drafter's own top-level namespace (``mtp``), for locally numbered layers."""
    root = facts.profile.root
    if root.index != "local":
        return None
    container = root.checkpoint.split("{n}", 1)[0].rstrip(".")  # "mtp.layers"
    return container.rsplit(".", 1)[0] if "." in container else None


def _under(names: Sequence[str], prefix: str) -> list[str]:
    return [n for n in names if n.startswith(prefix)]


def plan_graft(target: str | Path, source: str | Path, *, layers: str | Sequence[int] = "auto",
               force: bool = False, compare_progress: CompareProgress | None = None,
               profile: DrafterProfile | None = None) -> GraftPlan:
    """Decide what grafting SOURCE's draft layers into TARGET writes.

    Reads headers, and the bytes of draft tensors TARGET already has (to tell an
    identical rerun from a different layer); ``compare_progress(total bytes)`` gives the
    context manager that is told the bytes compared (``cli._output.Progress``).
    ``profile``: the drafter's mapping learned from vLLM (`core.learned`) when no hand
    profile describes it; its ``reads`` say which tensors are the drafter's."""
    _refuse_separate_drafters(Path(target), Path(source))
    ft, fs = load_facts(target, profile=profile), load_facts(source, profile=profile)
    if ft.model_dir.resolve() == fs.model_dir.resolve():
        raise ConfigError(f"{ft.model_dir}: TARGET and SOURCE are the same folder; pass the "
                          "unquantized original as --from")
    if ft.profile.architecture != fs.profile.architecture:
        raise ConfigError(
            f"{fs.model_dir}: SOURCE's drafter is {fs.profile.architecture} but TARGET's is "
            f"{ft.profile.architecture}; graft from the same model family")
    tcfg, scfg = ft.model_dir / "config.json", fs.model_dir / "config.json"
    for key in ("hidden_size", "vocab_size", "num_hidden_layers"):
        a, b = _int(ft.text_config, key, tcfg), _int(fs.text_config, key, scfg)
        if a != b:
            raise ConfigError(f"{scfg}: {key} is {b} but TARGET's ({tcfg}) is {a}; SOURCE must "
                              "be the unquantized original of TARGET")
    units = _units(ft, fs, layers)
    _check_source(fs, units)
    check_config_shapes(ft, [t for u in units for t in u.source])
    _check_shapes(ft, units)
    compared = [u for u in units if u.existing and {t.name for t in u.source} == set(u.existing)]
    total = sum(t.nbytes for u in compared for t in u.source)
    with (compare_progress(total) if compare_progress is not None and total
          else contextlib.nullcontext(None)) as progress:
        for u in units:
            if u.source or u.action != "skip":
                _decide(u, ft, fs, force, progress)
    return _assemble(ft, fs, units)


def _refuse_separate_drafters(*folders: Path) -> None:
    """graft completes a model's own draft layers; a separate draft model (EAGLE3) is a
    whole checkpoint of its own, which vLLM loads through ``--speculative-config``."""
    from vllm_draft_quant.checkpoint.locate import locate_model
    from vllm_draft_quant.checkpoint.speculative import _architectures
    from vllm_draft_quant.errors import DraftQuantError
    from vllm_draft_quant.profiles import profile_for_target

    for folder in folders:
        try:
            model_dir = locate_model(folder)
            profile = profile_for_target(_architectures(model_dir), origin=str(model_dir))
        except DraftQuantError:
            continue  # load_facts says what is wrong with it
        if profile.hidden_layers_from == "target":
            raise ConfigError(
                f"{model_dir}: {profile.architecture} is a separate draft model (all of it is "
                "the drafter), not a model whose draft layers an export dropped; graft copies "
                "MTP/NextN layers into such a model. Use the unquantized draft as it is: "
                "vLLM's --speculative-config '{\"method\": \"eagle3\", \"model\": "
                "\"<draft folder>\"}' (check it with 'vllm-draft-quant plan TARGET "
                "--speculative-config ...'), or 'fix TARGET --speculative-config ...' for a "
                "quantized draft whose config is wrong")


def _units(ft: CheckpointFacts, fs: CheckpointFacts, layers: str | Sequence[int]) -> list[Unit]:
    src_names, tgt_names = fs.files.weight_names(), ft.files.weight_names()
    if fs.profile.reads and not fs.names.layers:
        return [_learned_unit(fs, src_names, tgt_names, layers)]
    hidden = fs.names.num_hidden_layers
    glob_index = fs.profile.root.index == "global"
    available = {(hidden + layer.k if glob_index else layer.k): layer for layer in fs.names.layers
                 if _under(src_names, layer.checkpoint_root + ".")}
    if not available:
        raise MissingDraftWeightsError(
            f"{fs.model_dir}: SOURCE has no draft-layer tensors either "
            f"({', '.join(x.checkpoint_root for x in fs.names.layers) or 'no draft layers in its config'}); "
            "pass the unquantized original that ships them")
    if isinstance(layers, str):
        if layers != "auto":
            raise ConfigError(f"--layers {layers!r}: expected 'auto' or layer numbers")
        chosen = sorted(available)
    else:
        chosen = sorted(set(layers))
        unknown = [n for n in chosen if n not in available]
        if unknown:
            raise ConfigError(_unknown_layers(fs, unknown, available))
    units = []
    for n in chosen:
        root = available[n].checkpoint_root + "."
        units.append(Unit(f"draft layer {available[n].checkpoint_root}", root,
                          sources_for(fs.files, _under(src_names, root)), _under(tgt_names, root)))
    ns = _namespace(fs)
    if ns is not None:
        container = fs.profile.root.checkpoint.split("{n}", 1)[0]
        shared = [n for n in _under(src_names, ns + ".") if not n.startswith(container)]
        if any(_IN_LAYER.match(n) for n in shared):
            shared = []  # the target's layers live there too (MiMo's model.mtp_layers)
        if shared:
            existing = [n for n in _under(tgt_names, ns + ".") if not n.startswith(container)]
            units.append(Unit(f"shared draft tensors {ns}.*", ns + ".",
                              sources_for(fs.files, shared), existing))
    return units


def _learned_unit(fs: CheckpointFacts, src_names: Sequence[str], tgt_names: Sequence[str],
                  layers: str | Sequence[int]) -> Unit:
    """A drafter known only by the mapping learned from vLLM has no layer roots: the
    draft tensors are those its ``load_weights`` reads (``DrafterProfile.reads``) that
    SOURCE has and TARGET lacks; what TARGET already has (the target's embeddings and
    head the drafter shares, or an earlier graft) is left alone."""
    arch = fs.profile.architecture
    if layers != "auto":
        raise ConfigError(
            f"--layers {','.join(map(str, layers)) if not isinstance(layers, str) else layers}: "
            f"{arch}'s mapping was learned from vLLM, which numbers no draft layers; graft "
            "copies every draft tensor the drafter reads: leave out --layers")
    src, tgt = set(src_names), set(tgt_names)
    missing = [n for n in fs.profile.reads if n in src and n not in tgt]
    present = [n for n in fs.profile.reads if n in src and n in tgt]
    if not missing and not present:
        raise MissingDraftWeightsError(
            f"{fs.model_dir}: SOURCE has none of the tensors {arch} reads; pass the "
            "unquantized original that ships the draft layers")
    label = f"draft tensors {arch} reads (learned from vLLM)"
    if not missing:
        return Unit(label, "", [], present, action="skip")
    return Unit(label, "", sources_for(fs.files, missing), [])


def _unknown_layers(fs: CheckpointFacts, unknown: Sequence[int],
                    available: Mapping[int, Any]) -> str:
    """The --layers error: which numbers SOURCE lacks, which it has, and how they count."""
    have = sorted(available)
    roots = ", ".join(available[n].checkpoint_root for n in have)
    many = len(unknown) > 1
    msg = (f"--layers {','.join(map(str, unknown))}: SOURCE ({fs.model_dir}) has no draft "
           f"layer{'s' if many else ''} {' or '.join(map(str, unknown))}; its "
           f"{len(have)} draft layer{'s are' if len(have) > 1 else ' is'} "
           f"{', '.join(map(str, have))} ({roots})")
    if fs.profile.root.index == "global":
        hidden = fs.names.num_hidden_layers
        msg += (f"; draft layers are numbered as in tensor names, after the model's "
                f"{hidden} layers (num_hidden_layers {hidden} + 0..{len(fs.names.layers) - 1})")
    return msg + "; pass some of those numbers, or leave out --layers to graft them all"


def sources_for(files: CheckpointFiles, names: Sequence[str]) -> list[TensorSource]:
    """`TensorSource` of ``names``, read shard by shard, in natural name order."""
    by_shard: dict[str, list[str]] = {}
    for n in names:
        by_shard.setdefault(files.shard_of(n), []).append(n)
    out = [t for shard, ns in by_shard.items() for t in sources_of(files.model_dir / shard, ns)]
    return sorted(out, key=lambda t: _natural(t.name))


def _natural(name: str) -> list[Any]:
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def quantized_source_modules(dtypes: Mapping[str, str]) -> list[tuple[str, str]]:
    """(module, what it stores) for each module of ``{tensor: dtype}`` not stored
    unquantized; a plain float parameter (`formats.plain_float`) is unquantized."""
    out = []
    for module, tensors in group_by_module(dtypes).items():
        ev = classify(module, {t: dtypes[t] for t in tensors})
        if ev.format is StoredFormat.UNQUANTIZED or (
                ev.format is StoredFormat.UNKNOWN
                and plain_float({t.rpartition(".")[2]: dtypes[t] for t in tensors})):
            continue
        out.append((module, f"{ev.format} ({ev.detail})"))
    return out


def _check_source(fs: CheckpointFacts, units: list[Unit]) -> None:
    quantized = quantized_source_modules({t.name: t.dtype for u in units for t in u.source})
    if quantized:
        module, stored = quantized[0]
        raise CheckpointError(
            f"{fs.model_dir}: SOURCE stores draft module {module} as {stored}; "
            "graft copies unquantized draft layers: pass the BF16 original")


def _logical_shapes(ft: CheckpointFacts, skip: Sequence[str]) -> dict[str, set[tuple[int, ...]]]:
    """Per in-layer suffix (``self_attn.q_proj.weight``), TARGET's unpacked weight shapes."""
    names = [n for n in ft.files.weight_names() if not n.startswith(tuple(skip))]
    infos = ft.files.tensors(names)
    out: dict[str, set[tuple[int, ...]]] = {}
    for module, tensors in group_by_module(names).items():
        fmt = classify(module, {t: infos[t].dtype for t in tensors}).format
        if fmt in (StoredFormat.INT4, StoredFormat.UNKNOWN):
            continue
        for t in tensors:
            m = _IN_LAYER.match(t)
            last = t.rsplit(".", 1)[-1]
            if m is None or last not in ("weight", "weight_packed"):
                continue
            shape = infos[t].shape
            if fmt in _PACKED and shape:
                shape = (*shape[:-1], shape[-1] * 2)
            suffix = m.group(1).rsplit(".", 1)[0] + ".weight"
            out.setdefault(suffix, set()).add(tuple(shape))
    return out


def _check_shapes(ft: CheckpointFacts, units: list[Unit]) -> None:
    shapes = _logical_shapes(ft, [u.prefix for u in units if u.prefix])
    for u in units:
        for t in u.source:
            m = _IN_LAYER.match(t.name)
            if m is None or not t.name.endswith(".weight"):
                continue
            seen = shapes.get(m.group(1))
            if seen and len(seen) == 1 and t.shape not in seen:
                raise CheckpointError(
                    f"{ft.model_dir}: SOURCE tensor {t.name} has shape {list(t.shape)} but "
                    f"TARGET's layers store {m.group(1)} as {list(next(iter(seen)))} (unpacked); "
                    "SOURCE must be the unquantized original of TARGET")


def _decide(u: Unit, ft: CheckpointFacts, fs: CheckpointFacts, force: bool,
            progress: Callable[[int], None] | None = None) -> None:
    if not u.existing:
        u.action = "copy"
        return
    if {t.name for t in u.source} == set(u.existing):
        mine = {t.name: t for t in sources_for(ft.files, u.existing)}
        same = True
        for t in u.source:  # every tensor is told to progress, even after a difference
            if not same:
                if progress is not None:
                    progress(t.nbytes)
                continue
            same = same_bytes(t, mine[t.name], progress=progress)
        if same:
            u.action = "skip"
            return
    if not force:
        raise CheckpointError(
            f"{ft.model_dir}: TARGET already has {len(u.existing)} tensors for {u.label} "
            f"(e.g. {u.existing[0]}) that differ from SOURCE's; pass --force to replace them")
    u.action = "replace"


def _assemble(ft: CheckpointFacts, fs: CheckpointFacts, units: list[Unit]) -> GraftPlan:
    copy_ = [t for u in units if u.action != "skip" for t in u.source]
    dropped = {n for u in units if u.action == "replace" for n in u.existing}
    files = ft.files
    weight_map = {n: files.shard_of(n) for n in files.weight_names() if n not in dropped}
    shard = None
    rewrites: dict[str, list[TensorSource]] = {}
    deletes: list[str] = []
    for sh in sorted({files.shard_of(n) for n in dropped}):
        keep = [n for n, s in weight_map.items() if s == sh]
        if keep:
            rewrites[sh] = sources_for(files, keep)
        else:
            deletes.append(sh)
    if copy_:
        taken = set(files.shards) - set(deletes)
        shard = GRAFT_SHARD
        i = 1
        while shard in taken or (shard not in deletes and (ft.model_dir / shard).exists()):
            i += 1
            shard = f"model-mtp-graft-{i:05d}.safetensors"
        weight_map.update({t.name: shard for t in copy_})
    originals = {f: (ft.model_dir / f).read_text(encoding="utf-8-sig")
                 for f in (CONFIG, HF_QUANT, INDEX_FILE) if (ft.model_dir / f).is_file()}
    plan = GraftPlan(ft.model_dir, fs.model_dir, units, copy_, shard, rewrites, deletes,
                     None, {}, originals)
    new_config, n_draft = _new_config(ft, fs, units, plan.notes)
    virtual = _virtual_facts(ft, new_config, n_draft, weight_map, copy_)
    fix = compute_fix(virtual, decisions_from_facts(virtual))
    objects: dict[str, Mapping[str, Any]] = {CONFIG: new_config}
    if ft.hf_quant_config is not None:
        objects[HF_QUANT] = ft.hf_quant_config
    new_objs = {**{CONFIG: new_config}, **fix.new_objects(objects)}
    plan.fix = fix
    for f, obj in new_objs.items():
        before = ft.config if f == CONFIG else ft.hf_quant_config
        if obj != before:
            plan.configs[f] = obj
    if copy_ or dropped:
        plan.index = _new_index(ft, weight_map, copy_, rewrites)
    return plan


def _new_config(ft: CheckpointFacts, fs: CheckpointFacts, units: list[Unit],
                notes: list[str]) -> tuple[dict[str, Any], int]:
    """TARGET's config.json with the draft layer count and per-layer lists restored."""
    config = copy.deepcopy(dict(ft.config))
    tpath = _text_path(config, ft.profile.text_config_keys)
    text = _node(config, tpath)
    stext = fs.text_config
    hidden = ft.names.num_hidden_layers
    tgt_names = [n for n in ft.files.weight_names()]
    present = {u.prefix for u in units}
    have = []
    for k in range(max(len(fs.names.layers), len(ft.names.layers))):
        root = _root(ft, k) + "."
        if root in present or _under(tgt_names, root):
            have.append(k)
    n_draft = len(have)
    if have != list(range(n_draft)):
        missing = [k for k in range(max(have) + 1) if k not in have]
        number = [_number(ft, k) for k in missing]
        raise ConfigError(
            f"{ft.model_dir}: after the graft TARGET would hold draft layer"
            f"{'s' if len(have) > 1 else ''} {', '.join(str(_number(ft, k)) for k in have)} "
            f"without {', '.join(map(str, number))}: vLLM numbers draft layers from the first "
            f"without gaps; add {', '.join(map(str, number))} to --layers, or leave out "
            "--layers to graft all of SOURCE's")
    keys = ft.profile.num_layers_keys  # none: vLLM builds a fixed count (MiMo-V2)
    key = next((k for k in keys if k in text), next((k for k in keys if k in stext),
                                                   keys[0] if keys else None))
    if key is not None and text.get(key) != n_draft:
        notes.append(f"config.json: {'.'.join((*tpath, key))} {text.get(key)!r} -> {n_draft}")
        text[key] = n_draft
    src_total = fs.names.num_hidden_layers + len(fs.names.layers)
    for name, v in stext.items():
        old = text.get(name)
        if not (isinstance(v, list) and len(v) == src_total and isinstance(old, list)):
            continue
        if hidden <= len(old) < hidden + n_draft <= len(v):
            text[name] = [*old, *v[len(old):hidden + n_draft]]
            notes.append(f"config.json: {'.'.join((*tpath, name))} restored from SOURCE "
                         f"({len(old)} -> {len(text[name])} entries)")
    return config, n_draft


def _number(facts: CheckpointFacts, k: int) -> int:
    """Draft layer k's number as in tensor names (and --layers)."""
    return facts.names.num_hidden_layers + k if facts.profile.root.index == "global" else k


def _root(facts: CheckpointFacts, k: int) -> str:
    root = facts.profile.root
    n = facts.names.num_hidden_layers + k if root.index == "global" else k
    return root.checkpoint.format(n=n)


class _GraftedFiles(CheckpointFiles):
    """TARGET's files as they will be after the graft (for planning the exclusions)."""

    def __init__(self, base: CheckpointFiles, weight_map: dict[str, str],
                 extra: Mapping[str, TensorInfo]) -> None:  # no super(): nothing is read
        self.model_dir, self.index_path = base.model_dir, base.index_path
        self.files_opened = self.bytes_read = 0
        self._headers = {}
        self._weight_map = weight_map
        self._base, self._extra = base, extra

    def tensors(self, names: Any) -> dict[str, TensorInfo]:
        out: dict[str, TensorInfo] = {}
        for n in names:
            out[n] = self._extra[n] if n in self._extra else self._base.tensors([n])[n]
        return out


def _virtual_facts(ft: CheckpointFacts, config: dict[str, Any], n_draft: int,
                   weight_map: dict[str, str], copied: list[TensorSource]) -> CheckpointFacts:
    text = _node(config, _text_path(config, ft.profile.text_config_keys))
    qc = config.get("quantization_config", text.get("quantization_config"))
    intent = intent_from_configs(ft.hf_quant_config, qc, config_origin=CONFIG)
    names = NameMap(ft.profile, num_hidden_layers=ft.names.num_hidden_layers,
                    num_draft_layers=n_draft)
    extra = {t.name: TensorInfo(t.name, t.dtype, t.shape, (0, t.nbytes), weight_map[t.name])
             for t in copied}
    return replace(ft, config=config, text_config=text, intent=intent, names=names,
                   files=_GraftedFiles(ft.files, weight_map, extra))


def _new_index(ft: CheckpointFacts, weight_map: dict[str, str], copied: list[TensorSource],
               rewrites: Mapping[str, list[TensorSource]]) -> dict[str, Any]:
    sizes = {n: i.data_offsets[1] - i.data_offsets[0]
             for n, i in ft.files.tensors([n for n in weight_map if n in ft.files]).items()}
    sizes.update({t.name: t.nbytes for t in copied})
    if ft.files.index_path is not None:
        index = json.loads(json.dumps(load_json_object(ft.files.index_path, what="shard index",
                                                       error=CheckpointError)))
        index["weight_map"] = dict(weight_map)
    else:
        index = {"metadata": {}, "weight_map": dict(sorted(weight_map.items(),
                                                          key=lambda kv: _natural(kv[0])))}
    meta = index.get("metadata")
    if not isinstance(meta, dict):
        meta = index["metadata"] = {}
    meta["total_size"] = sum(sizes.get(n, 0) for n in weight_map)
    return dict(index)


# ------------------------------------------------------------------------------ writing
def apply_graft(plan: GraftPlan, *, progress: Callable[[int], None] | None = None) -> None:
    """Write ``plan`` into TARGET as one transaction (all or nothing)."""
    if not plan.changed:
        return
    texts = plan.texts()
    with Transaction(plan.target) as tx:
        for f in texts:
            plan.backups[f] = tx.backup(f)
        if plan.copy and plan.shard:
            tx.write_stream(plan.shard, partial(_fill, plan.copy, {"format": "pt"}, progress))
        for name, keep in plan.rewrites.items():
            meta = dict(read_header(plan.target / name).metadata)
            tx.write_stream(name, partial(_fill, keep, meta, progress))
        for name in plan.deletes:
            tx.remove(name)
        order = [INDEX_FILE, HF_QUANT, CONFIG]
        for f in sorted(texts, key=lambda f: order.index(f) if f in order else -1):
            tx.write_bytes(f, texts[f].encode("utf-8"))
        tx.commit()


def _fill(tensors: list[TensorSource], metadata: dict[str, str],
          progress: Callable[[int], None] | None, fh: BinaryIO) -> None:
    write_shard(fh, tensors, metadata=metadata, progress=progress)
