"""vLLM adapter (the only package that imports vllm, always inside functions)."""


def register() -> None:
    """Entry point of the ``vllm.general_plugins`` group (placeholder)."""
