"""The closing table of issue 14, generated from the case data (``matrix_int4.py``,
``matrix_per_layer.py``): producer x family x layout, stock vLLM's outcome and the
plugin's, and the counts. Each row is what the integration tests assert
(``test_int4_producers.py``, ``test_per_layer_producers.py``)::

    python tests/integration/int4_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from matrix import Expected  # noqa: E402
from matrix_int4 import CASES, PLUGIN_REFUSES, STOCK_INT4  # noqa: E402
from matrix_per_layer import CASES as PER_LAYER  # noqa: E402
from matrix_per_layer import STOCK_PER_LAYER  # noqa: E402


def _text(e: Expected) -> str:
    if e.outcome == "ok":
        return "loads right"
    if e.outcome == "loud":
        return f"fails: {e.error_type} `{e.match}`"
    return "silently wrong: " + ", ".join(p for p, _ in e.wrong)


def rows() -> list[tuple[str, str, str, str, str]]:
    out = []
    for case in (*CASES, *PER_LAYER):
        family, producer, scheme, layout = case
        stock = STOCK_INT4.get(case) or STOCK_PER_LAYER[case]
        refused = PLUGIN_REFUSES.get(case)
        plugin = (f"refuses: {refused.error_type} `{refused.match}`" if refused
                  else "loads, stored precision, values equal")
        what = producer if scheme == "int4" else f"{producer} ({scheme})"
        out.append((what, family, layout, _text(stock), plugin))
    return out


def main() -> None:
    table = rows()
    print("| producer | family | layout | stock (VLLM_DRAFT_QUANT=off) | plugin |")
    print("|---|---|---|---|---|")
    for r in table:
        print("| " + " | ".join(r) + " |")
    n = len(table)
    loaded = sum(r[4].startswith("loads") for r in table)
    stock = sum(r[3] == "loads right" for r in table)
    print(f"\n{n} cases: plugin loads {loaded}/{n} ({n - loaded} refused with one error naming "
          f"the tensor); stock vLLM loads right {stock}/{n}.")


if __name__ == "__main__":
    main()
