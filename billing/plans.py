"""Plan sizes and their prices. Which disk category a size belongs to is disks.categories' rule."""

from __future__ import annotations

from disks.categories import category_for_gb

GB = 1024**3  # a plan "GB" is a binary gigabyte, as the dashboard shows it
FREE_GB = 1
MIN_PAID_GB = 10
MAX_PAID_GB = 100


def is_valid_plan_gb(gb: int) -> bool:
    return gb == FREE_GB or MIN_PAID_GB <= gb <= MAX_PAID_GB


def _category_ranges() -> tuple[tuple[str, int, int], ...]:
    sizes: dict[str, list[int]] = {}
    for gb in range(FREE_GB, MAX_PAID_GB + 1):
        if is_valid_plan_gb(gb):
            sizes.setdefault(category_for_gb(gb), []).append(gb)
    return tuple((category, min(gbs), max(gbs)) for category, gbs in sorted(sizes.items()))


# (category, lowest GB, highest GB) for the price table the dashboard and the API show: derived from
# the placement rule, so the table cannot tell a customer another category than their data gets.
CATEGORY_RANGES = _category_ranges()


def price_cents_for_gb(gb: int) -> int:
    """The monthly price of a plan size; the free plan costs nothing."""
    from django.conf import settings

    if gb <= FREE_GB:
        return 0
    return gb * settings.BILLING_PRICE_PER_GB_CENTS
