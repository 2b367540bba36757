"""The GUI's speed goals (issue 8) in one run: the Curator's first page on a 100,000-image project against listing
100 ids from SQLite, and the confusion-matrix threshold update for 10,000 predictions end to end in a kernel
against computing the report alone. Each part is its own script (curator_bench.py, threshold_bench.py).

    python benchmarks/gui_bench.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    codes = []
    for script in ("curator_bench.py", "threshold_bench.py"):
        print(f"== {script}", flush=True)
        codes.append(subprocess.call([sys.executable, str(HERE / script)]))
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
