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


# The words for a click's `bot_reason` (linkgen/clicks/detect.py): a family, then a name.
BOT_FAMILIES: Final[dict[str, str]] = {
    "preview": "Link-preview crawler ({name}): fetched the link to draw a preview card.",
    "scanner": "Email security scanner ({name}): opened the link to check it before the "
    "recipient could.",
    "automation": "Automated tool ({name}): a script or headless browser, not a person.",
}
BOT_REASONS: Final[dict[str, str]] = {
    "scanner:message": "Email security scanner: the same client opened several links of one "
    "message within seconds, as scanners do and people do not.",
    "crawler": "Web crawler: the user agent is on the crawler list (crawlerdetect).",
    "empty_user_agent": "No user agent: browsers always send one, scripts often do not.",
}
_BOT_NAMES: Final[dict[str, str]] = {
    "imessage": "iMessage",
    "whatsapp": "WhatsApp",
    "telegrambot": "Telegram",
    "linkedinbot": "LinkedIn",
    "microsoft_safelinks": "Microsoft Safe Links",
    "trend_micro": "Trend Micro",
    "check_point": "Check Point",
    "palo_alto": "Palo Alto Networks",
    "headless_chrome": "headless Chrome",
    "python_requests": "Python requests",
    "python_httpx": "Python httpx",
    "python_urllib": "Python urllib",
    "go_http_client": "Go HTTP client",
    "apache_httpclient": "Apache HttpClient",
    "libwww_perl": "libwww-perl",
}

# Where a click was sent (`clicks.outcome`, linkgen/domain/routing.py), in words.
OUTCOMES: Final[dict[str, str]] = {
    "ios_url": "iOS page (af_ios_url)",
    "af_r": "Redirect (af_r)",
    "app_store": "App Store",
    "android_url": "Android page (af_android_url)",
    "google_play": "Google Play",
    "intent": "Android app, else Google Play",
    "deeplink_scheme": "App (URI scheme)",
    "web_dp": "Desktop page (af_web_dp)",
    "web_fallback": "Website (fallback)",
    "no_target": "Nowhere: no destination for this device",
    "preview": "Preview card",
}


def bot_reason_text(reason: str | None) -> str:
    """A click's bot reason in words; an unknown code is named as it is."""
    if not reason:
        return "A bot (no reason recorded)."
    if reason in BOT_REASONS:
        return BOT_REASONS[reason]
    family, _, name = reason.partition(":")
    if family in BOT_FAMILIES and name:
        shown = _BOT_NAMES.get(name) or name.replace("_", " ").capitalize()
        return BOT_FAMILIES[family].format(name=shown)
    return f"A bot ({reason})."


def outcome_text(outcome: str | None) -> str:
    """Where a click was sent, in words."""
    if not outcome:
        return "—"
    return OUTCOMES.get(outcome, outcome)
