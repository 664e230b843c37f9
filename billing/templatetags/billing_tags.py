from django import template

register = template.Library()


@register.filter
def money(cents, currency: str = "") -> str:
    """1234, "usd" → "12.34 USD"."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return f"{sign}{cents // 100}.{cents % 100:02d} {currency.upper()}".strip()
