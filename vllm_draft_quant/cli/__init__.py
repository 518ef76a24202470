"""The ``vllm-draft-quant`` command line: one module per subcommand, wired in `main`."""
