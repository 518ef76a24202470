"""The vLLM adapter: the only package that imports vllm, always inside functions.

`register` is the ``vllm.general_plugins`` entry point. vLLM calls it in every
process (front end, engine core, workers) and does not catch what it raises,
so it never raises (unless ``VLLM_DRAFT_QUANT=strict`` and vLLM is outside the
supported range), is re-entrant, and costs almost nothing: it makes vLLM know
the plugin's environment variables (`compat.register_env_vars`, in every mode, so
that ``VLLM_DRAFT_QUANT=off`` is no "unknown" variable either), then installs one
patch (P1, see ``patches.py``) on the model loader; the layer patches are
installed the first time a drafter load starts. Everything is logged through
vLLM's logger (`compat.logger`: its format, handlers and ``VLLM_LOGGING_LEVEL``).
"""

from __future__ import annotations

__all__ = ["register"]

_state = {"registered": False, "warned": False}


def register() -> None:
    """Activate vllm-draft-quant in this process (idempotent, never raises in auto mode)."""
    from vllm_draft_quant.adapter import compat, settings
    from vllm_draft_quant.errors import DraftQuantError

    logger = compat.logger()
    try:
        compat.register_env_vars(settings.ENV_VARS)
    except Exception as e:  # never take vLLM down
        logger.debug("vllm-draft-quant could not register its variables with vLLM: %s", e)
    try:
        st = settings.from_env()
    except DraftQuantError as e:
        logger.warning("vllm-draft-quant disabled: %s", e)
        return
    if st.mode == "off" or _state["registered"]:
        return
    reason = compat.check_supported()
    if reason:
        if st.mode == "strict":
            compat.require_supported()
        if not _state["warned"]:
            logger.warning("vllm-draft-quant standing aside: %s", reason)
            _state["warned"] = True
        return
    try:
        from vllm_draft_quant.adapter import patches

        patches.apply_loader_patch_lazily()
        _state["registered"] = True
    except Exception as e:  # never take vLLM down
        if st.mode == "strict":
            raise
        logger.warning("vllm-draft-quant could not install its loader hook (%s: %s); "
                       "draft layers load as stock vLLM loads them.", type(e).__name__, e)
