"""P5: the drafter's weight stream, while P1 loads one drafter (see ``patches.py``).

Two drafters' own ``load_weights`` defeat the precision the plan chose:

- **Shadowed tensors** (GLM): ``Glm4MoeMTP.load_weights`` renames the target's
  ``lm_head.weight`` to draft layer 0's ``shared_head.head.weight``, so two
  checkpoint tensors feed one parameter and the one read last wins: a quantized
  NextN head receives a BF16 ``lm_head`` (size mismatch), a BF16 one may silently
  hold ``lm_head``. The profile says so (``ModuleSpec.also_fed_by``); when the
  draft layer has its own tensors for the module, those other tensors are dropped
  from the weight stream the drafter reads.
- **Completeness check vs. KV-cache placeholders** (Step-3.5):
  ``Step3p5MTP.load_weights`` raises "Some parameters like ... are not in the
  checkpoint" for any parameter nobody loaded, and treats as optional only
  ``q/k/v/prob_scale`` of one element with ``requires_grad=False``. The
  compressed-tensors KV-cache method also registers ``*_zero_point`` placeholders
  (and its scales differ), so every compressed-tensors checkpoint fails. For a
  profile with ``checks_completeness``, the drafter's weights are loaded under
  vLLM's own scoped switch ``disable_mtp_completeness_check()``
  (``model_loader/mtp_validation.py``) and the same check is redone here, with every
  parameter of an attention layer's KV-cache method counted as optional when the
  checkpoint has no tensor for it. Anything else missing still fails, as one
  `MissingDraftWeightsError` naming the parameters and the upstream cause.

- **Plain layers stored quantized** (issue 13): a module the plan marks
  ``dequantize`` (vLLM builds it as a ``torch.nn.Linear`` or without a quant config,
  the checkpoint stores it FP8 or NVFP4) reaches the drafter as one unquantized
  ``weight``, dequantized exactly from its stored tensors (``adapter/dequant.py``);
  its scales are not passed on (stock vLLM fails on the first one: "There is no
  module or parameter named '...input_scale'").

- **GPTQ ``g_idx`` of draft modules** (issue 14): vLLM 0.33's GPTQ linear and MoE
  methods (``auto_gptq.py:AutoGPTQLinearMethod``/``AutoGPTQMoEMethod``,
  ``moe_wna16.py:MoeWNA16Method``) register no ``g_idx``; drafters loading through
  ``AutoWeightsLoader`` drop every ``.g_idx`` unread
  (``base_config.py:QuantizationConfig.get_checkpoint_weight_mapper``), but GLM's and
  DeepSeek's MTP ``load_weights`` index ``params_dict`` with it (experts through
  ``fused_moe_make_expert_params_mapping``: ``KeyError ...w2_g_idx``). When the built
  drafter has no ``g_idx`` parameter, a draft module's ``g_idx`` is dropped from the
  stream if it is provably trivial (``g_idx[i] == i // group``, group from the stored
  shapes: static groups, ``desc_act: false``, or one group per channel) and is one
  `DraftLoadError` naming the tensor otherwise (an activation order no kernel of this
  vLLM applies; vLLM's own mapper would drop it silently).

All act on the model *instance* (an instance attribute shadows
``model.load_weights`` for the duration of the load and is deleted afterwards);
nothing in vLLM's classes or modules changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from vllm_draft_quant.adapter import compat, dequant
from vllm_draft_quant.core.names import module_of
from vllm_draft_quant.core.plan import ModuleDecision, Plan
from vllm_draft_quant.errors import DraftLoadError, MissingDraftWeightsError
from vllm_draft_quant.profiles import DrafterProfile

__all__ = ["dequantized_modules", "g_idx_tensors", "shadowed_modules", "trivial_g_idx",
           "weight_stream"]

_KV_PLACEHOLDERS = (
    "q_scale",
    "k_scale",
    "v_scale",
    "prob_scale",
    "q_zero_point",
    "k_zero_point",
    "v_zero_point",
)


def shadowed_modules(profile: DrafterProfile, plan: Plan) -> frozenset[str]:
    """Checkpoint modules whose tensors must not reach the drafter.

    A module listed in a spec's ``also_fed_by`` is dropped when the plan has a
    decision for that spec's runtime module built from the draft layer's own tensors.
    """
    drop: set[str] = set()
    for spec in (*profile.modules, *profile.globals):
        if not spec.also_fed_by:
            continue
        own = [
            d
            for d in plan.modules
            if (d.module == spec.runtime or d.module.endswith("." + spec.runtime))
            and d.checkpoint_tensors
        ]
        if own:
            drop.update(spec.also_fed_by)
    return frozenset(drop)


def dequantized_modules(plan: Plan) -> dict[str, ModuleDecision]:
    """Checkpoint module -> its decision, for every module the plan dequantizes at load."""
    return {module_of(t): d for d in plan.modules if d.source == "dequantize"
            for t in d.checkpoint_tensors}


def g_idx_tensors(plan: Plan) -> dict[str, ModuleDecision]:
    """Checkpoint ``g_idx`` tensor -> its module's decision, for draft modules the plan
    builds from a packed-integer layout read from the shapes."""
    return {t: d for d in plan.modules if d.layout is not None
            for t in d.checkpoint_tensors if t.endswith(".g_idx")}


def trivial_g_idx(g_idx: Any, group_size: int | None) -> bool:
    """Whether a GPTQ ``g_idx`` maps input column ``i`` to group ``i // group_size`` (-1:
    one group per output channel), i.e. says nothing the group size does not."""
    import torch

    n = int(g_idx.numel())
    if g_idx.dim() != 1 or n == 0 or group_size is None or group_size == 0:
        return False
    group = n if group_size == -1 else group_size
    expected = torch.arange(n, dtype=torch.int64, device=g_idx.device) // group
    return bool(torch.equal(g_idx.to(torch.int64), expected))


class _GIdx:
    """Drops the trivial ``g_idx`` of draft modules the built drafter has no parameter
    for; a non-trivial one is one `DraftLoadError` naming it."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.tensors = g_idx_tensors(plan)

    def arm(self, model: Any) -> None:
        if any(n.endswith("g_idx") for n, _ in model.named_parameters()):
            self.tensors = {}  # a vLLM whose methods take g_idx: pass it on

    def take(self, name: str, tensor: Any) -> bool:
        """True when ``name`` is a trivial draft ``g_idx`` (consumed, not passed on)."""
        d = self.tensors.get(name)
        if d is None:
            return False
        group = d.layout.group_size if d.layout is not None else None
        if not trivial_g_idx(tensor, group):
            raise DraftLoadError(
                f"{self.plan.drafter}: {name} is not the static order of group size {group} "
                f"(g_idx[i] != i // {group}): an activation order (GPTQ desc_act) that "
                "vLLM's GPTQ kernels on this version cannot apply, so the module would load "
                "wrong; re-export the draft layers with desc_act false (static groups).")
        return True


class _Dequantizer:
    """Collects a plain module's stored tensors; yields its weight once all are read."""

    def __init__(self, plan: Plan, block: tuple[int, int] | None = None) -> None:
        self.plan = plan
        self.block = block
        self.modules = dequantized_modules(plan)
        self.parts: dict[str, dict[str, Any]] = {}
        self.done: set[str] = set()

    def take(self, name: str, tensor: Any) -> tuple[bool, tuple[str, Any] | None]:
        """(consumed, the weight to pass on instead, if it is now complete)."""
        module, _, suffix = name.rpartition(".")
        d = self.modules.get(module)
        if d is None or suffix not in dequant.AUX:
            return False, None
        if module in self.done:
            return True, None
        parts = self.parts.setdefault(module, {})
        parts[suffix] = tensor
        if not dequant.needed(d.stored) <= parts.keys():
            return True, None
        self.done.add(module)
        del self.parts[module]
        try:
            weight = dequant.dequantize(d.stored, parts, self.block)
        except ValueError as e:
            raise DraftLoadError(f"{self.plan.drafter}: cannot dequantize {module} "
                                 f"({d.stored}): {e}") from None
        return True, (f"{module}.weight", weight)

    def finish(self) -> None:
        pending = {m: sorted(dequant.needed(self.modules[m].stored) - p.keys())
                   for m, p in self.parts.items()}
        if pending:
            raise DraftLoadError(
                f"{self.plan.drafter}: cannot dequantize {sorted(pending)}: the checkpoint "
                f"has no {pending}; re-export those modules or store them unquantized.")


def _kv_placeholders(model: Any) -> set[str]:
    """Names of KV-cache-method parameters of the drafter's attention layers."""
    out: set[str] = set()
    for path, module in model.named_modules():
        qm = getattr(module, "quant_method", None)
        if qm is None or "KVCache" not in type(qm).__name__:
            continue
        for pname, _ in module.named_parameters(recurse=False):
            if pname in _KV_PLACEHOLDERS:
                out.add(f"{path}.{pname}" if path else pname)
    return out


@contextlib.contextmanager
def weight_stream(model: Any, profile: DrafterProfile, plan: Plan,
                  block: tuple[int, int] | None = None) -> Iterator[list[str]]:
    """While active, ``model.load_weights`` reads the filtered stream (P5).

    Yields the list of dropped tensor names (filled while loading).
    """
    drop = shadowed_modules(profile, plan)
    check = profile.checks_completeness
    deq = _Dequantizer(plan, block)
    gidx = _GIdx(plan)
    gidx.arm(model)
    dropped: list[str] = []
    original = model.load_weights
    last = [""]  # the checkpoint tensor the drafter read last

    def filtered(weights: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
        for name, tensor in weights:
            last[0] = name
            if module_of(name) in drop:
                dropped.append(name)
                continue
            if gidx.take(name, tensor):
                continue
            consumed, instead = deq.take(name, tensor)
            if instead is not None:
                yield instead
            if not consumed:
                yield name, tensor
        deq.finish()

    def load_weights(weights: Iterable[tuple[str, Any]]) -> Any:
        stream = filtered(weights)
        try:
            if not check:
                return original(stream)
            with compat.mtp_completeness_check_disabled():
                loaded = original(stream)
        except KeyError as e:
            _no_home(e, last[0], model, plan)
            raise
        if isinstance(loaded, set):
            _check_complete(model, loaded, plan)
        return loaded

    model.load_weights = load_weights
    try:
        yield dropped
    finally:
        with contextlib.suppress(AttributeError):
            del model.load_weights


def _no_home(e: KeyError, tensor: str, model: Any, plan: Plan) -> None:
    """Raise one `DraftLoadError` when the drafter's ``load_weights`` found no parameter
    for a stored quantization side tensor (``KeyError: '...input_scale'``), never vLLM's
    KeyError: LongCat-Flash's fixed rename table has no entry for ModelOpt's scales
    (``longcat_flash_mtp.py:LongCatFlashMTP.load_weights``)."""
    key = str(e.args[0]) if e.args else ""
    if key.rpartition(".")[2] not in dequant.AUX - {"weight"}:
        return
    module = module_of(tensor) if tensor else key.rpartition(".")[0]
    planned = [d for d in plan.modules if any(module_of(t) == module
                                              for t in d.checkpoint_tensors)]
    where = (f"draft module {planned[0].module} (planned {planned[0].scheme})" if planned
             else "a draft module the plan does not cover (the dry run saw no layer take "
                  "its weight)")
    raise DraftLoadError(
        f"{plan.drafter}: checkpoint module {module} ({where}) is stored quantized, but "
        f"vLLM's {type(model).__name__}.load_weights has no parameter for its stored "
        f"{key.rpartition('.')[2]} ({tensor or key}; KeyError {key!r}): the drafter's "
        "own loader has no place for this module's scales, so it cannot load quantized. "
        "Store the module unquantized (re-export it, or graft it from the BF16 "
        "original).") from e


def _check_complete(model: Any, loaded: set[str], plan: Plan) -> None:
    params = {n for n, _ in model.named_parameters()}
    missing = sorted(params - loaded - _kv_placeholders(model))
    if missing:
        raise MissingDraftWeightsError(
            f"{plan.drafter}: {len(missing)} draft parameter(s) are not in the checkpoint and "
            f"would keep their random initialisation: {missing[:5]}"
            + (" ..." if len(missing) > 5 else "")
            + ". (vllm-draft-quant redoes the drafter's completeness check because vLLM's "
            "own one also rejects the KV-cache method's placeholder parameters; see "
            "vllm_draft_quant/adapter/weights.py.) Check that the export kept every draft tensor."
        )
