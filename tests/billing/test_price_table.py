"""The price table's category ranges (billing) agree with the rule that places data (disks)."""

from __future__ import annotations

from billing.plans import CATEGORY_RANGES, FREE_GB, MAX_PAID_GB, MIN_PAID_GB, is_valid_plan_gb
from disks.categories import CATEGORIES, category_for_gb


def test_every_plan_size_is_shown_in_the_category_its_data_is_placed_in():
    shown = {gb: category for category, low, high in CATEGORY_RANGES for gb in range(low, high + 1)}
    sizes = [gb for gb in range(FREE_GB, MAX_PAID_GB + 1) if is_valid_plan_gb(gb)]
    assert sorted(shown) == sizes
    assert {gb: category_for_gb(gb) for gb in sizes} == shown
    assert [category for category, _, _ in CATEGORY_RANGES] == list(CATEGORIES)
    assert category_for_gb(MIN_PAID_GB) == "B" and category_for_gb(FREE_GB) == "A"
