"""``vllm-draft-quant``: the console script (entry point ``vllm_draft_quant.cli.main:main``).

Exit codes: 0 fine; 1 conflicts found (config and stored tensors disagree, or a
fix is pending); 2 bad input (any project error, unreadable folder, bad
arguments, a concurrent fix/graft); 3 internal error (a bug: please report it
with the ``--debug`` traceback). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from vllm_draft_quant._version import __version__
from vllm_draft_quant.cli import demo, fix, graft, plan_cmd
from vllm_draft_quant.errors import ConflictError, DraftQuantError
from vllm_draft_quant.repair.lock import TerminatedBySignal, reraise
from vllm_draft_quant.repair.writer import last_outcome, reset_outcome

__all__ = ["EXIT_BAD_INPUT", "EXIT_CONFLICTS", "EXIT_INTERNAL", "EXIT_OK", "build_parser", "main"]

EXIT_OK, EXIT_CONFLICTS, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
PROG = "vllm-draft-quant"
SUBCOMMANDS: dict[str, ModuleType] = {"plan": plan_cmd, "fix": fix, "graft": graft, "demo": demo}

_DESCRIPTION = """\
Load the draft layers (MTP/NextN) of quantized checkpoints in the precision their
tensors are stored in. Explain a checkpoint's plan, make its config truthful, graft
missing draft weights, or watch the fix work on a tiny model."""

_EPILOG = """\
start here:
  vllm-draft-quant demo                            see the bug and the fix on a tiny model
  vllm-draft-quant plan /models/Step-3.7-Flash-NVFP4
  vllm-draft-quant fix /models/Step-3.7-Flash-NVFP4 --write
  vllm-draft-quant graft /models/Step-3.7-Flash-NVFP4 --from /models/Step-3.7-Flash

MODEL is a local folder or a Hugging Face repo id already in the local cache (never
downloads). Run 'vllm-draft-quant <command> --help' for each command's examples.

exit codes: 0 fine, 1 conflicts found, 2 bad input, 3 internal error (please report)"""


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line too (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {' '.join(message.split())} "
                                  f"(see '{self.prog} --help')\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=_DESCRIPTION, epilog=_EPILOG,
                                     formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, module in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION,
                           epilog="examples:\n" + module.EXAMPLES, formatter_class=_Formatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns (and, as a script, exits with) the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    debug = bool(getattr(args, "debug", False))
    reset_outcome()
    try:
        code: int = args.run(args)
        return code
    except ConflictError as e:
        _report(e, debug)
        return EXIT_CONFLICTS
    except DraftQuantError as e:
        _report(e, debug)
        return EXIT_BAD_INPUT
    except OSError as e:  # a file we read outside the checkers (permissions, races)
        _report(e, debug)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; {_what_changed()}\n")
        return 130
    except TerminatedBySignal as e:
        sys.stderr.write(f"{PROG}: {e}; {_what_changed()}\n")
        sys.stderr.flush()
        reraise(e)  # end as the signal would have, now that the lock is released
        return 128 + e.signum  # pragma: no cover - reraise does not return
    except Exception as e:
        _report(e, debug, f"internal error ({type(e).__name__}): ",
                "" if debug else " (rerun with --debug and report the traceback)")
        return EXIT_INTERNAL


def _what_changed() -> str:
    outcome = last_outcome()
    if outcome is None:
        return "nothing was changed"
    if outcome.startswith("rolled back"):
        return f"the change was {outcome}"
    return f"the change had been written ({outcome.removeprefix('committed: ')})"


def _report(e: BaseException, debug: bool, head: str = "", tail: str = "") -> None:
    if debug:
        traceback.print_exception(e)
    sys.stderr.write(f"{PROG}: error: {head}{_one_line(e)}{tail}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
