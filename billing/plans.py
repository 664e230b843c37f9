"""Plan sizes and their prices. Which disk category a size belongs to is disks.categories' rule."""

from __future__ import annotations

GB = 1024**3  # a plan "GB" is a binary gigabyte, as the dashboard shows it
FREE_GB = 1
MIN_PAID_GB = 10
MAX_PAID_GB = 100


def is_valid_plan_gb(gb: int) -> bool:
    return gb == FREE_GB or MIN_PAID_GB <= gb <= MAX_PAID_GB


# (category, lowest GB, highest GB) for the price table the dashboard and the API show.
CATEGORY_RANGES = (
    ("A", FREE_GB, FREE_GB),
    ("B", 10, 24),
    ("C", 25, 49),
    ("D", 50, 74),
    ("E", 75, 100),
)


def price_cents_for_gb(gb: int) -> int:
    """The monthly price of a plan size; the free plan costs nothing."""
    from django.conf import settings

    if gb <= FREE_GB:
        return 0
    return gb * settings.BILLING_PRICE_PER_GB_CENTS
