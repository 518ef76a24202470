"""The shape of a drafter profile: data that says how a drafter renames modules.

A profile describes one vLLM draft architecture (``Step3p5MTP``, ...):

- where its draft layers sit, in checkpoint names and in the runtime prefixes
  vLLM passes to ``QuantizationConfig.get_quant_method`` (``layer_root``);
- for every module of a draft layer that vLLM builds: its runtime suffix, the
  checkpoint module(s) whose tensors it loads (several for a fused module, in
  vLLM's shard order), and its kind (only ``plain`` modules cannot carry a
  quant method);
- modules outside the draft layers that the drafter builds (``globals``);
- what stock vLLM (no plugin) does with the drafter's quant config
  (``stock``: `StockBehaviour`), so ``fix`` can write exclusions stock vLLM follows
  and say what it still cannot load.

Names use two placeholders: ``{n}`` for a draft layer's index in the
namespace the root says (global: ``num_hidden_layers + k``; local: ``k``) and
``{e}`` for an expert index (per-expert checkpoint tensors).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vllm_draft_quant.core.schemes import Group, ModuleKind, Scheme

__all__ = ["DrafterProfile", "LayerRoot", "ModuleSpec", "StockBehaviour", "StockLimit"]


@dataclass(frozen=True)
class ModuleSpec:
    """One module vLLM builds, and the checkpoint modules it loads from.

    ``runtime`` and ``checkpoint`` are relative to the layer roots (or absolute
    for a profile's ``globals``). ``group`` is ``attn``, ``mlp`` or ``head``:
    how users and the factory talk about parts of a draft layer.
    ``unless_present`` names checkpoint modules whose presence selects another
    variant (a DeepSeek layer with ``q_a_proj`` fuses it with
    ``kv_a_proj_with_mqa``; without it, ``kv_a_proj_with_mqa`` stands alone).
    ``also_fed_by`` names modules outside the draft layers whose tensors the
    drafter's ``load_weights`` writes into the same parameters (last one read wins).
    """

    runtime: str
    checkpoint: tuple[str, ...]
    kind: ModuleKind = ModuleKind.LINEAR
    group: Group = "attn"
    unless_present: tuple[str, ...] = ()
    # absolute checkpoint modules outside the draft layers that the drafter's
    # load_weights *also* routes into this module's parameters of the first draft
    # layer (GLM: `lm_head` into draft layer 0's NextN head; stock vLLM keeps
    # whichever it reads last); the adapter drops their tensors from the
    # drafter's weight stream when the draft layer has its own.
    also_fed_by: tuple[str, ...] = ()

    @property
    def fused(self) -> bool:
        return len(self.checkpoint) > 1

    @property
    def per_expert(self) -> bool:
        return any("{e}" in c for c in self.checkpoint)


@dataclass(frozen=True)
class LayerRoot:
    """Prefix of draft layer ``{n}`` in checkpoint and runtime names.

    ``index`` numbers ``{n}`` in both namespaces unless ``runtime_index`` says the
    runtime numbers differently (MiMo: checkpoint ``model.mtp_layers.{k}``, runtime
    ``model.layers.{num_hidden_layers + k}``).
    """

    checkpoint: str
    runtime: str
    index: str = "global"  # "global": num_hidden_layers + k; "local": k
    runtime_index: str | None = None  # None: same as ``index``

    def __post_init__(self) -> None:
        for name in ("index", "runtime_index"):
            value = getattr(self, name)
            if value not in ("global", "local") and not (name == "runtime_index" and value is None):
                raise ValueError(f"LayerRoot.{name} must be 'global' or 'local', got {value!r}")


@dataclass(frozen=True)
class StockLimit:
    """A checkpoint stock vLLM cannot load whatever its exclusion lists say.

    ``text`` completes the sentence "stock vLLM <version> ..." in ``fix``'s report.
    """

    text: str
    producer: str | None = None  # only checkpoints of this producer; None: every one


@dataclass(frozen=True)
class StockBehaviour:
    """What stock vLLM (no plugin) does with this drafter's quant config.

    Read off the drafter's code in the supported vLLM (each profile cites the
    functions) and checked on real builds (``tests/integration``); ``repair.stock``
    models vLLM's matchers and reads these facts.
    """

    # which config object the drafter builds its layers with: "target" (the target
    # model's, ``vllm_config.quant_config``, after the target's construction changed
    # it) or "draft" (a fresh parse of the draft checkpoint's own, get_draft_quant_config);
    # "unknown" for a mapping learned from vLLM's code (``core.learned``), not read off it
    quant_config: str
    # whether that object has a packed-module mapping when the drafter's layers are
    # built, so exact shard names (``q_proj``, ``k_proj``, ``v_proj``) exclude a fused
    # module (``qkv_proj``); a fresh parse has none
    packed_exclusions: bool
    # (producer, scheme, runtime prefix) the drafter builds unquantized whatever the
    # config says (Qwen3-Next's ``mtp.fc`` under ``modelopt_fp4``)
    always_unquantized: tuple[tuple[str, Scheme, str], ...] = ()
    limits: tuple[StockLimit, ...] = ()
    # entries starting with this text have every ``.layers.<k>`` number raised by the
    # target's ``num_hidden_layers`` before vLLM matches them (Qwen4Exp's own remap of
    # checkpoint-numbered MTP layers, ``qwen4_exp/nvidia/mtp.py:_remap_ignored_layers``);
    # None: entries are matched as written
    shifts_layer_numbers: str | None = None

    def __post_init__(self) -> None:
        if self.quant_config not in ("target", "draft", "unknown"):
            raise ValueError("StockBehaviour.quant_config must be 'target', 'draft' or 'unknown', "
                             f"got {self.quant_config!r}")


@dataclass(frozen=True)
class DrafterProfile:
    """Everything the resolver needs to know about one vLLM drafter."""

    architecture: str  # vLLM draft architecture, e.g. "Step3p5MTP"
    target_architectures: tuple[str, ...]  # HF architectures of the target model
    root: LayerRoot
    modules: tuple[ModuleSpec, ...]
    globals: tuple[ModuleSpec, ...] = ()
    # config.json keys that give the number of draft layers, first found wins.
    num_layers_keys: tuple[str, ...] = ("num_nextn_predict_layers",)
    default_num_layers: int = 1
    # where in config.json the text model's keys live (multimodal wrappers).
    text_config_keys: tuple[str, ...] = ("text_config",)
    # the drafter's load_weights raises for any parameter it did not load (vLLM's
    # `is_mtp_completeness_check_enabled`); the adapter redoes that check itself
    checks_completeness: bool = False
    # other draft architecture names vLLM's registry maps to the same drafter class
    # (EAGLE3: "LlamaForCausalLMEagle3" and "Eagle3LlamaForCausalLM" are one class).
    architecture_aliases: tuple[str, ...] = ()
    # whose num_hidden_layers a "global" index adds to: "draft" (this checkpoint's own
    # config.json: MTP layers follow the model's layers) or "target" (a separate draft
    # model whose layers vLLM numbers after the target's: EAGLE3 ``start_layer_id``).
    hidden_layers_from: str = "draft"
    # substring renames the drafter's load_weights applies to every checkpoint name
    # before matching (EAGLE3 hf_to_vllm_mapper: "midlayer." -> "layers.0.").
    checkpoint_renames: tuple[tuple[str, str], ...] = ()
    notes: str = ""
    families: tuple[str, ...] = field(default=())
    # what stock vLLM does with the drafter's quant config; None: no record (``fix``
    # then says it cannot tell whether stock vLLM follows its entries)
    stock: StockBehaviour | None = None
    # a learned profile only: every checkpoint tensor the drafter's load_weights was seen
    # to read (``core.learned``), draft and shared ones alike; ``graft`` copies those
    # SOURCE has and TARGET lacks (a hand profile's layer roots say it instead)
    reads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hidden_layers_from not in ("draft", "target"):
            raise ValueError("DrafterProfile.hidden_layers_from must be 'draft' or 'target', "
                             f"got {self.hidden_layers_from!r}")
