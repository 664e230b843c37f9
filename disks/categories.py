"""Disk categories: a workspace's data lives on disks of the category its plan size belongs to.

The lowest layer of disks/ (no imports): the models, placement and the operators' views use it, and
so do accounts (a workspace's category) and billing (the price table shows each size's category).
"""

from __future__ import annotations

CATEGORIES = ("A", "B", "C", "D", "E")

# (lowest plan size in GB, category); the first row whose bound the size reaches wins.
_LOWEST_GB = ((75, "E"), (50, "D"), (25, "C"), (10, "B"), (0, "A"))


def category_for_gb(gb: int) -> str:
    """A = free 1 GB, B = 10–24, C = 25–49, D = 50–74, E = 75–100."""
    for low, category in _LOWEST_GB:
        if gb >= low:
            return category
    return "A"
