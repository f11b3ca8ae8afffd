"""Attribution windows (`12h`, `7d`, `lifetime`): one grammar and one set of limits.

Two readers share them, because the same value arrives two ways:

- `parse_window` checks a value somebody is saving (a link's `af_click_lookback`, an app's
  `click_lookback`) and refuses a bad one with an error naming the field. It takes only the
  canonical spelling (`7d`, not `7D`, ` 7 d` or `07d`), so what is stored is what is shown.
- `read_window` reads a value at click or launch time, from a URL that may have been built by
  hand or by another tool: it also takes upper case and spaces, and answers None for anything it
  cannot use, so that the app's default applies instead of the click failing.

Limits (domain.md, section 2 and the `af_click_lookback` / `af_reengagement_window` parameters):
click lookback 1h..23h or 1d..30d; re-engagement
window 1h..36h, 1d..90d or lifetime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from linkgen.domain.errors import InvalidParameter


@dataclass(frozen=True)
class WindowRule:
    """The values one kind of window may take."""

    max_hours: int
    max_days: int
    allow_lifetime: bool = False

    def describe(self) -> str:
        """The allowed values in words, for error messages."""
        allowed = f"1h..{self.max_hours}h or 1d..{self.max_days}d"
        return allowed + (" or lifetime" if self.allow_lifetime else "")

    def within(self, amount: int, unit: str) -> timedelta | None:
        """The window for `amount` hours or days, or None outside the limits."""
        if unit == "h" and 1 <= amount <= self.max_hours:
            return timedelta(hours=amount)
        if unit == "d" and 1 <= amount <= self.max_days:
            return timedelta(days=amount)
        return None


CLICK_LOOKBACK: Final = WindowRule(max_hours=23, max_days=30)
REENGAGEMENT_WINDOW: Final = WindowRule(max_hours=36, max_days=90, allow_lifetime=True)

LIFETIME_WORD: Final = "lifetime"
_CANONICAL_RE = re.compile(r"\A([1-9][0-9]{0,3})([hd])\Z")
_TOLERANT_RE = re.compile(r"\A\s*([0-9]{1,3})\s*([hd])\s*\Z", re.IGNORECASE)


def parse_window(value: object, field: str, rule: WindowRule) -> timedelta | None:
    """A window being saved, in its canonical spelling; None means `lifetime`.

    Raises InvalidParameter naming `field` when the value is not one `rule` allows.
    """
    if not isinstance(value, str):
        raise InvalidParameter(f"{field} must be {rule.describe()}", field=field)
    if rule.allow_lifetime and value == LIFETIME_WORD:
        return None
    match = _CANONICAL_RE.match(value)
    window = rule.within(int(match.group(1)), match.group(2)) if match else None
    if window is None:
        raise InvalidParameter(f"{field} must be {rule.describe()}", field=field)
    return window


def read_window(value: str | None, rule: WindowRule) -> tuple[timedelta | None, bool]:
    """A window read at click or launch time, as (window, lifetime).

    (None, False) when the value is absent or not one `rule` allows: the caller's default
    applies. `lifetime` (any case) gives (None, True) where the rule allows it.
    """
    if value is None:
        return None, False
    if rule.allow_lifetime and value.strip().lower() == LIFETIME_WORD:
        return None, True
    match = _TOLERANT_RE.match(value)
    if match is None:
        return None, False
    return rule.within(int(match.group(1)), match.group(2).lower()), False
