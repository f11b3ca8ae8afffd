"""Why a launch was attributed as it was, in words an app developer reads: the reasons a click
was passed over (`launches.explain.passed_over`) and how the winning click matched."""

from __future__ import annotations

from typing import Final

from linkgen.domain.attribution import CLICK_INJECTION_THRESHOLD

PASSED_OVER: Final[dict[str, str]] = {
    "after_launch": "The click came after this launch, so it cannot have caused it.",
    "bot": "The click was made by a bot, a link checker or an email scanner, not a person.",
    "expired_link": "The click was on an expired short link; such clicks are not attributed.",
    "consumed": "The click already earned an earlier install or re-engagement.",
    "not_retargeting": "The app was already installed, and the link was not a retargeting "
    "link (is_retargeting=true), so the open is not a re-engagement.",
    "before_install": "The click came before the install, so it had its chance at the install.",
    "click_injection": "The launch came less than "
    f"{int(CLICK_INJECTION_THRESHOLD.total_seconds())} s after the click: too soon for a person "
    "to install and open the app, which is what click-injection fraud looks like.",
    "no_match": "Nothing ties the click to this device: no click id in the install referrer or "
    "deep link, no shared device id or customer user id, and not the same address.",
    "outside_lookback": "The click matched this device, but it is older than the click "
    "look-back window (click_lookback, or af_click_lookback on the link).",
    "probabilistic_disabled": "Only the address matched, and probabilistic matching is off "
    "for this app.",
    "platform_mismatch": "Only the address matched, and the click came from another platform "
    "(for example a computer or an Android phone for an iOS app).",
    "os_version_mismatch": "Only the address matched, and the click's OS version is not the "
    "app's (the launch's os_version, or the version read from its user agent).",
    "superseded": "The click matched too, but another click matched better or later and won.",
}

MATCHED: Final[dict[str, str]] = {
    "referrer": "The Play install referrer carried this click's id (af_tranid).",
    "deep_link": "The app reported the link it was opened with (deep_link_url).",
    "device_id": "The click carried the device's advertising id (GAID, IDFA) or IDFV.",
    "customer_user_id": "The click carried the same customer user id the app reported.",
    "probabilistic": "Same address, platform and OS version within the probabilistic window.",
}


def passed_over_text(reason: str) -> str:
    """The sentence for a passed-over reason (the code itself when unknown)."""
    return PASSED_OVER.get(reason, f"Passed over ({reason}).")


def matched_text(match_type: str | None) -> str:
    """The sentence for how the winning click matched; an organic launch says so."""
    if match_type is None:
        return "No click won: the launch counts as organic."
    return MATCHED.get(match_type, f"Matched by {match_type}.")
