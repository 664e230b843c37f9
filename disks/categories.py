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


def gb_range(category: str) -> tuple[int, int | None]:
    """The plan sizes (GB) of a category: (lowest, first size above it), None above E."""
    bounds = sorted(low for low, _ in _LOWEST_GB)
    for low, name in _LOWEST_GB:
        if name == category:
            higher = [bound for bound in bounds if bound > low]
            return low, (higher[0] if higher else None)
    raise ValueError(f"unknown category {category!r}")
