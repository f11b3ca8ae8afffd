"""Plain-words explanations of why a click did not win a launch (the test-device view)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# One sentence per reason `attribute_launch` records for a passed-over click.
REASON_TEXT: Mapping[str, str] = MappingProxyType(
    {
        "after_launch": "The click came after this launch, so it cannot have caused it.",
        "bot": "The click was made by a bot or a link scanner, and such clicks never win.",
        "expired_link": "The click was on a short link that had already expired.",
        "consumed": "The click had already won an earlier install or launch.",
        "no_match": (
            "Nothing tied the click to this device: no click id in the referrer or the "
            "deep-link URL, no shared device id or customer user id, and no probabilistic match."
        ),
        "outside_lookback": (
            "The click matched this device but was older than the lookback window "
            "(7 days unless the app or the link sets another)."
        ),
        "platform_mismatch": (
            "Only the address matched, and the click was made on another platform than the app's."
        ),
        "os_version_mismatch": (
            "Only the address matched, and the click's OS version differs from the device's."
        ),
        "probabilistic_disabled": (
            "Only the address matched, and the app has probabilistic matching switched off."
        ),
        "not_retargeting": (
            "The device was already installed, and the click was not on a retargeting link "
            "(is_retargeting=true), so it could not re-engage it."
        ),
        "before_install": (
            "The click was made before this device's install, which it had its chance to win."
        ),
        "click_injection": (
            "The first launch came less than 10 seconds after the click: too fast for a person "
            "to install the app, so it is treated as suspected click injection and never wins."
        ),
        "superseded": "The click matched, but a stronger or later click won this launch.",
    }
)


def explain_reason(reason: str) -> str:
    """The reason in plain words (an unknown reason is shown as its code)."""
    return REASON_TEXT.get(reason, f"Passed over ({reason}).")
