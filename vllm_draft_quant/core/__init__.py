"""The pure core: rule grammars, name mapping, the plan. Imports neither torch nor vllm."""
