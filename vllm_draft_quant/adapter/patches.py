"""The patch ledger: every change vllm-draft-quant makes to vLLM's behaviour.

vLLM 0.33 offers no registry hook for "give this one layer another quant
method", so the adapter wraps four functions (P1-P4) and, during one drafter
load, the drafter instance's ``load_weights`` (P5). Each entry says what it
patches, why, how, the upstream issue, and when it can go. Every patch is
idempotent (applying twice changes nothing), keeps the original in
``ORIGINALS``, and calls it unchanged whenever no drafter is being built.

P1 ``BaseModelLoader.load_model`` (model_loader/base_loader.py)
   why:  the one place every drafter load passes (proposer ``_get_model`` ->
         ``get_model`` -> ``loader.load_model``) with the draft ModelConfig.
   how:  if the model's architecture has a drafter profile, compute the plan
         from the draft checkpoint's headers, build the drafter with a private
         copy of the quant config (vLLM 0.33 otherwise overwrites the target's
         ``packed_modules_mapping`` / exclusions when it builds Qwen3-Next or
         DeepSeek drafters), activate the plan for the layer patches, and
         verify the loaded parameters before post-load processing. A draft
         read from its own checkpoint (``speculative_config.model`` naming
         another folder than the target's) is planned from that folder and
         built on that folder's own quant config (vLLM's
         ``get_draft_quant_config``), never on the target's; for EAGLE3
         drafters the plan places layers after the target's layer count.
         A draft architecture of vLLM's drafter registry that no hand profile
         describes gets its mapping learned first (``learn.py``: a meta-device dry
         run of vLLM's own drafter class and ``load_weights``, the layer patches
         building every layer unquantized while ``context.LearnBuild`` is active),
         then the same plan and build; ``strict`` raises one ``LearnError`` where
         it cannot be learned, ``auto`` warns once and calls the original.
   upstream: vllm-project/vllm#28072 (exclusions vs. runtime names) and the
         per-model ``quant_config=None if fp4`` workarounds.
   remove when: vLLM maps draft exclusions to runtime names for every drafter.
P2 ``LinearBase.__init__`` (layers/linear.py)
P3 ``VocabParallelEmbedding.__init__`` (layers/vocab_parallel_embedding.py;
   covers ``ParallelLMHead``)
P4 ``RoutedExperts._get_quant_method`` (layers/fused_moe/routed_experts.py)
   why:  these are where a layer's quant method is chosen from the
         ``quant_config`` it is given (``None`` means unquantized, which is how
         drafters hard-code ``mtp.fc`` under modelopt_fp4).
   how:  while a drafter is built and the layer's prefix is in the plan, pass
         ``None`` (unquantized) or a config that quantizes with the stored
         scheme; everything else is passed through untouched. Target layers are
         never in a plan, and no plan is active while the target is built.
   remove when: P1 can go.
P5 the drafter's ``load_weights`` (instance attribute, ``adapter/weights.py``)
   what: for one drafter load only, an instance attribute on the drafter model
         shadows its ``load_weights`` (deleted when the load ends; vLLM's class
         and modules are untouched; the original bound method is called).
   why:  two drafters' own loading defeats the planned precision. GLM
         (``Glm4MoeMTP.load_weights``) renames the target's ``lm_head.weight`` to
         draft layer 0's ``shared_head.head.weight``: whichever of the two is read
         last wins (a quantized NextN head cannot load; a BF16 one may silently hold
         ``lm_head``). Step-3.5 (``Step3p5MTP.load_weights``) raises "Some
         parameters like ... are not in the checkpoint" on every
         compressed-tensors checkpoint, because the compressed-tensors KV-cache
         method's placeholder parameters (``*_zero_point``, scales) are not among
         the ones it treats as optional.
   how:  profile data decides. ``ModuleSpec.also_fed_by``: when the draft layer
         has its own tensors for the module, tensors of the listed checkpoint
         modules are dropped from the stream the drafter reads.
         ``DrafterProfile.checks_completeness``: the drafter loads under vLLM's
         own scoped switch ``disable_mtp_completeness_check()``, and the same check
         is redone with the attention layers' KV-cache parameters optional; any
         other missing parameter is one ``MissingDraftWeightsError`` naming them.
         ``source == "dequantize"`` (a ``torch.nn.Linear`` or unquantized vLLM layer
         the checkpoint stores FP8/NVFP4: MiMo's ``input_proj``, NextN ``eh_proj``):
         its stored tensors are held back until complete and passed on as one
         dequantized ``weight`` (``adapter/dequant.py``), so the drafter never sees
         the scales it has no parameter for. A GPTQ ``g_idx`` of a draft module
         (no GPTQ method of vLLM 0.33 has that parameter; GLM's and DeepSeek's MTP
         ``load_weights`` raise ``KeyError ...w2_g_idx`` on it) is dropped when it is
         ``i // group`` and is one ``DraftLoadError`` naming it otherwise.
   upstream: glm4_moe_mtp.py ``if name == "lm_head.weight"`` rename;
         step3p5_mtp.py ``optional_params`` (numel()==1 KV scales only).
   remove when: GLM's drafter prefers the NextN head, Step-3.5's check knows
         KV-cache placeholders, plain input projections carry a quant method, GLM's and
         DeepSeek's MTP loaders apply ``get_checkpoint_weight_mapper`` (then drop ``also_fed_by`` / ``checks_completeness``
         from the profiles).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from vllm_draft_quant.adapter import compat, context

ORIGINALS: dict[str, Callable[..., Any]] = {}
_MARK = "__vllm_draft_quant_patch__"


def _install(owner: Any, attr: str, key: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    current = getattr(owner, attr)
    if getattr(current, _MARK, None) == key:
        return False  # already applied
    ORIGINALS[key] = current
    wrapper = make(current)
    setattr(wrapper, _MARK, key)
    setattr(owner, attr, wrapper)
    return True


def _arg_swapper(func: Callable[..., Any]) -> Callable[..., tuple[Any, Any, Any]]:
    """For ``func(self, ..., quant_config, prefix, ...)``: read/replace those two args."""
    params = list(inspect.signature(func).parameters)
    qi, pi = params.index("quant_config"), params.index("prefix")

    def access(args: tuple[Any, ...], kwargs: dict[str, Any], new_qc: Any = ..., ) -> tuple[Any, Any, Any]:
        prefix = kwargs["prefix"] if "prefix" in kwargs else (args[pi] if len(args) > pi else "")
        qc = kwargs["quant_config"] if "quant_config" in kwargs else (
            args[qi] if len(args) > qi else None)
        if new_qc is not ...:
            if "quant_config" in kwargs or len(args) <= qi:
                kwargs = {**kwargs, "quant_config": new_qc}
            else:
                args = (*args[:qi], new_qc, *args[qi + 1:])
        return prefix, qc, (args, kwargs)

    return access


def _constructor_patch(orig: Callable[..., Any]) -> Callable[..., Any]:
    access = _arg_swapper(orig)

    @functools.wraps(orig)
    def __init__(*args: Any, **kwargs: Any) -> None:
        build = context.current()
        if build is not None:
            prefix, qc, _ = access(args, kwargs)
            changed, new_qc = build.config_for_layer(prefix, qc)
            if changed:
                _, _, (args, kwargs) = access(args, kwargs, new_qc)
        orig(*args, **kwargs)

    return __init__


def _experts_patch(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def _get_quant_method(self: Any, prefix: str, quant_config: Any, moe_config: Any) -> Any:
        build = context.current()
        if build is not None:
            changed, new_qc = build.config_for_layer(prefix, quant_config)
            if changed:
                quant_config = new_qc
                self.quant_config = new_qc
        return orig(self, prefix, quant_config, moe_config)

    return _get_quant_method


def _install_key(key: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    owner, attr = compat.patch_targets()[key]
    return _install(owner, attr, key, make)


def apply_layer_patches() -> int:
    """P2-P4. Returns how many were newly applied (0 on a second call)."""
    return sum((
        _install_key("P2 LinearBase.__init__", _constructor_patch),
        _install_key("P3 VocabParallelEmbedding.__init__", _constructor_patch),
        _install_key("P4 RoutedExperts._get_quant_method", _experts_patch),
    ))


def apply_loader_patch() -> int:
    """P1. Returns 1 if newly applied, 0 if it already was."""
    # imported here: it pulls in the planner (and pydantic), which register() must not
    from vllm_draft_quant.adapter.draft_load import wrap_load_model

    return int(_install_key("P1 BaseModelLoader.load_model",
                            lambda orig: wrap_load_model(orig, before_draft=apply_layer_patches)))


def remove_all() -> None:
    """Restore every original (tests use this; vLLM never needs it)."""
    owners = compat.patch_targets()
    for key, orig in list(ORIGINALS.items()):
        owner, attr = owners[key]
        setattr(owner, attr, orig)
        del ORIGINALS[key]


class _AfterImport:
    """A meta-path finder that applies P1 right after vLLM's loader module is executed.

    So `register()` imports nothing heavy: processes that never load a model (the
    API front end) never pay for importing the model loader.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != compat.LOADER_MODULE:
            return None
        import importlib.machinery
        import sys

        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            try:
                apply_loader_patch()
            except Exception as e:  # never take vLLM down
                compat.logger().warning("vllm-draft-quant could not install its "
                                        "loader hook: %s", e)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def apply_loader_patch_lazily() -> None:
    """Apply P1 now if vLLM's loader is imported, else right after it is."""
    import sys

    if compat.LOADER_MODULE in sys.modules:
        apply_loader_patch()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
