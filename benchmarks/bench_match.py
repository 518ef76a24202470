"""Exclusion decisions per second: the resolver's compiled matcher vs vLLM's ModelOpt matcher.

Same rule list, same prefixes: a 1,500-entry ModelOpt exclusion list (every MTP expert
listed, as real exports do, plus per-layer routers and a few wildcards) against every
module prefix of a 60-layer, 256-expert MoE model (~47k names). vLLM's
``ModelOptQuantConfigBase.is_layer_excluded`` tries exact matching, then substring
containment and fnmatch against every rule for every prefix; it is timed on a sample.

Agreement: counted wherever vLLM's matcher is correct, i.e. where its answer does not
come from substring containment alone (``model.layers.4`` hitting ``model.layers.40``
is vLLM's known over-match, see core/rules.py).

Target: >= 100x vLLM's throughput.
Last line: ours_per_s=<n> vllm_per_s=<n> speedup=<ours/vllm> disagreements=<n>
"""

from __future__ import annotations

import argparse
import fnmatch
import random
import time

from vllm_draft_quant.core.rules import RuleSet, make_rules

LAYERS, EXPERTS, MTP = 60, 256, 60
ATTN = ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj")


def prefixes() -> list[str]:
    out = ["lm_head", "model.embed_tokens"]
    for i in range(LAYERS + 1):  # + the MTP layer
        root = f"model.layers.{i}"
        out += [f"{root}.self_attn.{a}" for a in ATTN]
        out += [f"{root}.mlp.gate", f"{root}.mlp.shared_experts.gate_proj",
                f"{root}.mlp.shared_experts.up_proj", f"{root}.mlp.shared_experts.down_proj"]
        out += [f"{root}.mlp.experts.{e}.{p}" for e in range(EXPERTS)
                for p in ("gate_proj", "up_proj", "down_proj")]
        if i == MTP:
            out += [f"{root}.eh_proj", f"{root}.shared_head.head"]
    return out


def rules() -> list[str]:
    r = ["lm_head", "*mlp.gate", f"model.layers.{MTP}.shared_head*", f"model.layers.{MTP}.eh_proj"]
    mtp = f"model.layers.{MTP}"
    r += [f"{mtp}.self_attn.{a}" for a in ATTN]
    r += [f"{mtp}.mlp.experts.{e}.{p}" for e in range(EXPERTS)
          for p in ("gate_proj", "up_proj", "down_proj")]
    r += [f"{mtp}.mlp.shared_experts.{p}" for p in ("gate_proj", "up_proj", "down_proj")]
    r += [f"model.layers.{i}.mlp.gate" for i in range(LAYERS)]
    i = 0
    while len(r) < 1500:  # fill with a target layer's experts (kept BF16 by the export)
        r.append(f"model.layers.4.mlp.experts.{i // 3}.{('gate_proj', 'up_proj', 'down_proj')[i % 3]}")
        i += 1
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vllm-sample", type=int, default=1500, help="prefixes timed through vLLM")
    args = ap.parse_args()
    names, rule_list = prefixes(), rules()
    print(f"{len(rule_list)} rules x {len(names)} prefixes")

    t = time.perf_counter()
    rs = RuleSet(make_rules(rule_list, grammar="modelopt", origin="bench"))
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = {n: rs.matches(n) for n in names}
    ours_s = time.perf_counter() - t
    ours_per_s = len(names) / ours_s

    from vllm.model_executor.layers.quantization.modelopt import ModelOptNvFp4Config

    cfg = ModelOptNvFp4Config.from_config(
        {"quantization": {"quant_algo": "NVFP4", "group_size": 16, "kv_cache_quant_algo": None,
                          "exclude_modules": rule_list}})
    cfg.packed_modules_mapping = {}
    sample = random.Random(0).sample(names, min(args.vllm_sample, len(names)))
    t = time.perf_counter()
    theirs = {n: cfg.is_layer_excluded(n) for n in sample}
    vllm_s = time.perf_counter() - t
    vllm_per_s = len(sample) / vllm_s

    def vllm_without_substring(n: str) -> bool:
        return n in rule_list or any(fnmatch.fnmatch(n, r) for r in rule_list)

    disagreements = over_matches = 0
    for n, v in theirs.items():
        if v and not vllm_without_substring(n):
            over_matches += 1  # vLLM's substring over-match: not a place where it is correct
            continue
        disagreements += v != ours[n]
    print(f"compile {compile_s * 1e3:.1f} ms; ours {ours_s:.3f} s for {len(names)}; "
          f"vLLM {vllm_s:.3f} s for {len(sample)}; vLLM substring over-matches skipped: "
          f"{over_matches}")
    speedup = ours_per_s / vllm_per_s
    print(f"target: speedup {speedup:.0f} >= 100: {speedup >= 100}")
    print(f"ours_per_s={ours_per_s:.0f} vllm_per_s={vllm_per_s:.0f} speedup={speedup:.1f} "
          f"disagreements={disagreements}")


if __name__ == "__main__":
    main()
