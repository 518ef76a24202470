"""Repairs that write to a model folder: `fix` (truthful exclusions), `graft` (missing
draft layers), the model of stock vLLM's matching they check against, and atomic writes."""
