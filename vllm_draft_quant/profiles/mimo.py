"""MiMo-7B MTP (vLLM draft architecture ``MiMoMTPModel``).

Read off vLLM 0.33.0 ``model_executor/models/mimo_mtp.py``
(MiMoMultiTokenPredictorLayer.__init__, MiMoMultiTokenPredictor.__init__, MiMoMTP).
Checkpoint layers ``model.mtp_layers.{k}`` (k from 0); the hf_to_vllm_mapper moves
parameters to ``model.mtp_layers.{N + k}.mtp_block.*`` (N = num_hidden_layers), but the
Qwen2DecoderLayer is built with prefix ``model.layers.{N + k}``, so runtime prefixes are
``model.layers.{N + k}.self_attn.qkv_proj``, ...: no exclusion written in checkpoint
names can match them. input_proj is a ``torch.nn.Linear``; the drafter's lm_head is a
ParallelLMHead built without a quant config.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import dense_block

__all__ = ["MIMO_MTP", "PROFILES"]

MIMO_MTP = DrafterProfile(
    architecture="MiMoMTPModel",
    target_architectures=("MiMoForCausalLM",),
    root=LayerRoot(checkpoint="model.mtp_layers.{n}", runtime="model.layers.{n}",
                   index="local", runtime_index="global"),
    modules=(
        *dense_block(),
        ModuleSpec("input_proj", ("input_proj",), ModuleKind.PLAIN, group="head"),
    ),
    globals=(ModuleSpec("lm_head", ("lm_head",), ModuleKind.FIXED, group="head"),),
    families=("MiMo-7B",),
    # MiMoMultiTokenPredictor.__init__ passes vllm_config.quant_config (the target's
    # object) to every layer. MiMoMTP has no class-level packed_modules_mapping (its
    # WeightsMapper is set per instance, which model_loader/utils.py:
    # configure_quant_config never reads), so the target's mapping stays: MiMoForCausalLM
    # inherits Qwen2ForCausalLM.packed_modules_mapping (qkv_proj, gate_up_proj), put on
    # the config by models/interfaces.py:SupportsQuant._maybe_apply_model_mapping. The
    # runtime prefixes above never equal checkpoint names, so only entries written in
    # runtime names exclude anything (measured, FINDINGS.md "More families").
    stock=StockBehaviour(quant_config="target", packed_exclusions=True),
)

PROFILES: tuple[DrafterProfile, ...] = (MIMO_MTP,)
