"""Python's cyclic garbage collector, tuned for a process that builds many short-lived
small objects (decoded events, tuples, dicts) and keeps few cycles.

Measured with the in-process stages over 54k touch-heavy events: 11.4-11.8k events per
CPU-second with the default thresholds, 13.6-13.9k after ``tune_gc`` (1,479 young
collections down to 638). Objects alive at start-up (modules, config, compiled rules)
are frozen out of every collection; the young generation is collected every 50,000
allocations instead of 700. Cycles are still collected, just in fewer, larger passes.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Call once start-up is done (config loaded, app built)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 50, 100)
