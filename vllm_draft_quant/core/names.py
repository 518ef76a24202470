"""Checkpoint name <-> runtime prefix mapping for one drafter on one checkpoint.

`NameMap` places the draft layers (from ``num_hidden_layers`` and the number of
draft layers) and translates, using the profile's data only:

- a checkpoint *module* name (a tensor name without its last component) to the
  runtime module prefix vLLM builds, the shard index inside a fused module and
  the expert index of a per-expert tensor;
- a runtime module prefix back to its checkpoint module names.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from dataclasses import dataclass

from vllm_draft_quant.core.profile import DrafterProfile, ModuleSpec

__all__ = ["DraftLayer", "NameMap", "RuntimeModule", "module_of"]

_EXPERT = re.compile(r"\{e\}")


def module_of(tensor_name: str) -> str:
    """The checkpoint module a tensor belongs to: its name without the last part."""
    return tensor_name.rsplit(".", 1)[0] if "." in tensor_name else tensor_name


@dataclass(frozen=True)
class DraftLayer:
    k: int  # 0-based position among the draft layers
    checkpoint_root: str
    runtime_root: str


@dataclass(frozen=True)
class RuntimeModule:
    """One module vLLM builds for the drafter, with its full names."""

    prefix: str  # the runtime prefix vLLM passes when attaching a quant method
    spec: ModuleSpec
    layer: DraftLayer | None  # None for a profile global
    checkpoint_modules: tuple[str, ...]  # shard templates made absolute ({e} kept)

    def checkpoint_names(self, experts: Iterable[int] = ()) -> list[str]:
        """Absolute checkpoint module names; per-expert templates expanded."""
        out: list[str] = []
        experts = list(experts)
        for c in self.checkpoint_modules:
            if "{e}" in c:
                out.extend(c.replace("{e}", str(e)) for e in experts)
            else:
                out.append(c)
        return out


class NameMap:
    """All runtime modules of a drafter, and the reverse index from checkpoint names."""

    def __init__(self, profile: DrafterProfile, *, num_hidden_layers: int, num_draft_layers: int):
        if num_hidden_layers < 0 or num_draft_layers < 0:
            raise ValueError("layer counts must be non-negative")
        self.profile = profile
        self.num_hidden_layers = num_hidden_layers
        self.layers: tuple[DraftLayer, ...] = tuple(
            self._place(k) for k in range(num_draft_layers)
        )
        modules: list[RuntimeModule] = []
        for layer in self.layers:
            for spec in profile.modules:
                modules.append(RuntimeModule(
                    prefix=f"{layer.runtime_root}.{spec.runtime}",
                    spec=spec,
                    layer=layer,
                    checkpoint_modules=tuple(f"{layer.checkpoint_root}.{c}" for c in spec.checkpoint),
                ))
        for spec in profile.globals:
            modules.append(RuntimeModule(spec.runtime, spec, None, spec.checkpoint))
        self.modules: tuple[RuntimeModule, ...] = tuple(modules)
        self._by_prefix = {m.prefix: m for m in self.modules}
        # exact checkpoint module -> [(runtime module, shard index)]; a checkpoint
        # module can belong to two variants (DeepSeek's kv_a_proj_with_mqa: a shard
        # of fused_qkv_a_proj, or alone when the layer has no q_a_proj). Variant
        # modules (with `unless_present`) come first: they claim it when active.
        self._exact: dict[str, list[tuple[RuntimeModule, int]]] = {}
        # per-expert templates, one regex per (runtime module, shard)
        self._expert: list[tuple[re.Pattern[str], RuntimeModule, int]] = []
        for m in sorted(self.modules, key=lambda m: not m.spec.unless_present):
            for i, c in enumerate(m.checkpoint_modules):
                if "{e}" in c:
                    pat = re.escape(c).replace(re.escape("{e}"), r"(\d+)")
                    self._expert.append((re.compile(pat + r"\Z"), m, i))
                else:
                    self._exact.setdefault(c, []).append((m, i))
        self.checkpoint_roots: tuple[str, ...] = tuple(
            dict.fromkeys([*(f"{layer.checkpoint_root}." for layer in self.layers),
                           *(c for s in profile.globals for c in s.checkpoint)])
        )
        # is_draft_name without a loop: names equal to a root (without its dot), or
        # starting with a root plus its dot
        self._root_names = frozenset(r.rstrip(".") for r in self.checkpoint_roots)
        self._root_prefixes = tuple(r if r.endswith(".") else r + "." for r in self.checkpoint_roots)
        # every draft name starts with one of these, or holds a rename's source
        self.candidate_prefixes: tuple[str, ...] = tuple(
            dict.fromkeys(r.rstrip(".") for r in self.checkpoint_roots))
        self.candidate_substrings: tuple[str, ...] = tuple(
            dict.fromkeys(old for old, _ in profile.checkpoint_renames))

    def _place(self, k: int) -> DraftLayer:
        root = self.profile.root
        n = self.num_hidden_layers + k if root.index == "global" else k
        rt_index = root.runtime_index or root.index
        n_rt = self.num_hidden_layers + k if rt_index == "global" else k
        return DraftLayer(k, root.checkpoint.format(n=n), root.runtime.format(n=n_rt))

    def canonical(self, checkpoint_name: str) -> str:
        """``checkpoint_name`` as the drafter's ``load_weights`` renames it before matching
        (the profile's ``checkpoint_renames``; EAGLE3 ``midlayer.`` -> ``layers.0.``)."""
        for old, new in self.profile.checkpoint_renames:
            if old in checkpoint_name:
                checkpoint_name = checkpoint_name.replace(old, new, 1)
        return checkpoint_name

    def is_draft_name(self, checkpoint_name: str) -> bool:
        """Whether a checkpoint tensor or module name belongs to the drafter."""
        if self.profile.checkpoint_renames:
            checkpoint_name = self.canonical(checkpoint_name)
        return checkpoint_name in self._root_names or checkpoint_name.startswith(
            self._root_prefixes)

    def draft_names(self, names: Iterable[str]) -> list[str]:
        """The draft names among ``names`` (`is_draft_name`), sorted.

        Cheap on a whole checkpoint's names: a C-level prefix test first, and only the
        names that pass it (or hold a rename's source) are canonicalised."""
        prefixes, subs = self.candidate_prefixes, self.candidate_substrings
        cands = [n for n in names if n.startswith(prefixes)] if prefixes else []
        if subs:
            seen = set(cands)
            cands += [n for n in names if n not in seen and any(s in n for s in subs)]
        return sorted(n for n in cands if self.is_draft_name(n))

    def is_active(self, module: RuntimeModule, present: Container[str] | None = None) -> bool:
        """Whether vLLM builds ``module`` given the checkpoint modules ``present``.

        A module with ``unless_present`` is a variant: vLLM builds it only when none
        of those checkpoint modules is in its layer. ``present=None`` means "a full
        checkpoint" (every variant module is inactive).
        """
        if not module.spec.unless_present:
            return True
        if present is None:
            return False
        root = module.layer.checkpoint_root + "." if module.layer else ""
        return not any(root + u in present for u in module.spec.unless_present)

    def runtime_of(
        self, checkpoint_module: str, present: Container[str] | None = None
    ) -> tuple[RuntimeModule, int, int | None] | None:
        """(runtime module, shard index, expert index) of a checkpoint module, or None.

        ``present`` (the checkpoint modules the checkpoint has) picks between
        variants, see `is_active`. Names are taken through `canonical` first.
        """
        if self.profile.checkpoint_renames:
            checkpoint_module = self.canonical(checkpoint_module)
            if present is not None:
                present = {self.canonical(str(p)) for p in present}  # type: ignore[attr-defined]
        for m, i in self._exact.get(checkpoint_module, ()):
            if self.is_active(m, present):
                return m, i, None
        for pat, m, i in self._expert:
            match = pat.match(checkpoint_module)
            if match:
                return m, i, int(match.group(1))
        return None

    def module(self, prefix: str) -> RuntimeModule | None:
        return self._by_prefix.get(prefix)
