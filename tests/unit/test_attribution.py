"""Scenario table for launch and event attribution (linkgen.domain.attribution)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from linkgen.domain.attribution import (
    AppRules,
    ClickFacts,
    InstallFacts,
    LaunchDecision,
    LaunchFacts,
    Platform,
    ReengagementFacts,
    attribute_event,
    attribute_launch,
    candidate_keys,
    click_facts_from_params,
    click_ids_from_query,
)
from linkgen.domain.windows import CLICK_LOOKBACK, REENGAGEMENT_WINDOW, read_window

T0 = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)
GAID = "38400000-8cf0-11bd-b23e-10b96e40000d"
IDFV = "6d9e2a3c-1b2f-4d4e-9a8b-7c6d5e4f3a2b"
CUID = "__h1a2b3c"
IP = "203.0.113.7"
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)

UA = {"pid": "Email", "c": "spring_sale", "af_channel": "email"}
RT = {"pid": "Push", "c": "winback", "af_channel": "push", "is_retargeting": "true"}


def click(
    click_id: str,
    age: timedelta,
    base: Mapping[str, str] = UA,
    *,
    ip: str | None = None,
    platform: Platform = "android",
    os_version: str | None = None,
    is_bot: bool = False,
    attributable: bool = True,
    consumed: bool = False,
    link_id: str | None = "link-1",
    **params: str,
) -> ClickFacts:
    """A click `age` before the launch (negative age: after it)."""
    return click_facts_from_params(
        click_id,
        T0 - age,
        {**base, **params},
        link_id=link_id,
        is_bot=is_bot,
        bot_reason="scanner" if is_bot else None,
        attributable=attributable,
        ip=ip,
        platform=platform,
        os_version=os_version,
        consumed=consumed,
    )


def launch(**overrides: object) -> LaunchFacts:
    """A first launch at T0 on an Android device with nothing identifying unless asked."""
    base = LaunchFacts(
        device_id="dev-new",
        customer_user_id=None,
        first_launch=True,
        install_referrer=None,
        deep_link_url=None,
        idfa=None,
        idfv=None,
        gaid=None,
        ip=None,
        platform="android",
        os_version=None,
        ts=T0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def install(
    age: timedelta,
    *,
    device_id: str = "dev-old",
    organic: bool = False,
    reengagement: ReengagementFacts | None = None,
) -> InstallFacts:
    """A known install `age` before T0, attributed to an SMS link unless organic."""
    return InstallFacts(
        device_id=device_id,
        installed_at=T0 - age,
        customer_user_id=CUID,
        idfv=None,
        gaid=GAID,
        idfa=None,
        media_source=None if organic else "SMS",
        campaign=None if organic else "launch",
        channel=None if organic else "sms",
        link_id=None if organic else "link-sms",
        click_id=None if organic else "c-orig",
        is_organic=organic,
        reengagement=reengagement,
        match_type=None if organic else "referrer",
        click_time=None if organic else T0 - age - H,
    )


@dataclass
class Case:
    launch: LaunchFacts
    clicks: tuple[ClickFacts, ...] = ()
    expect: dict[str, object] = field(default_factory=dict)
    passed: dict[str, str] = field(default_factory=dict)
    existing: InstallFacts | None = None
    prior: InstallFacts | None = None
    app: AppRules = field(default_factory=AppRules)
    now: datetime | None = None
    deep_link_params: dict[str, str] | None = None
    deep_link_link_id: str | None = None
    deep_link_attributable: bool = True


def organic(**extra: object) -> dict[str, object]:
    return {"type": "install", "is_organic": True, "winner": None, "match_type": None, **extra}


def won(
    click_id: str, match_type: str, type_: str = "install", **extra: object
) -> dict[str, object]:
    return {
        "type": type_,
        "is_organic": False,
        "click_id": click_id,
        "match_type": match_type,
        **extra,
    }


ANDROID = {"gaid": GAID}
DL = {"deep_link_value": "shoes", "deep_link_sub1": "red", "af_sub1": "x", "promo": "p1"}
DL_SAFE = {"status": "FOUND", "deep_link_value": "shoes", "deep_link_sub1": "red"}

LAUNCH_CASES = [
    # --- installs: match methods -----------------------------------------------------------
    pytest.param(
        Case(launch(), (), organic(counts_as_install=True)), id="no_clicks_install_is_organic"
    ),
    pytest.param(
        Case(
            launch(install_referrer="af_tranid=c1&pid=Email"),
            (click("c1", H),),
            won("c1", "referrer"),
        ),
        id="referrer_match_wins_install",
    ),
    pytest.param(
        Case(
            launch(install_referrer="af_tranid%3Dc1%26pid%3DEmail"),
            (click("c1", H),),
            won("c1", "referrer"),
        ),
        id="percent_encoded_referrer_matches",
    ),
    pytest.param(
        Case(
            launch(install_referrer="utm_source=google-play&utm_medium=organic"),
            (click("c1", H),),
            organic(),
            {"c1": "no_match"},
        ),
        id="referrer_without_click_id_is_organic",
    ),
    pytest.param(
        Case(launch(gaid=GAID), (click("c1", H, gaid=GAID),), won("c1", "device_id")),
        id="gaid_on_click_matches_device",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, advertising_id=GAID.upper()),),
            won("c1", "device_id"),
        ),
        id="advertising_id_matches_case_insensitively",
    ),
    pytest.param(
        Case(
            launch(idfv=IDFV, platform="ios"),
            (click("c1", H, idfv=IDFV, platform="ios"),),
            won("c1", "device_id"),
        ),
        id="idfv_on_click_matches_ios_device",
    ),
    pytest.param(
        Case(
            launch(gaid="00000000-0000-0000-0000-000000000000"),
            (click("c1", H, gaid="00000000-0000-0000-0000-000000000000"),),
            organic(),
            {"c1": "no_match"},
        ),
        id="zeroed_limit_ad_tracking_id_never_matches",
    ),
    pytest.param(
        Case(
            launch(customer_user_id=CUID),
            (click("c1", H, customer_user_id=CUID),),
            won("c1", "customer_user_id"),
        ),
        id="customer_user_id_param_matches",
    ),
    pytest.param(
        Case(
            launch(customer_user_id=CUID),
            (click("c1", H, af_sub5=CUID),),
            won("c1", "customer_user_id"),
        ),
        id="customer_user_id_from_af_sub5_matches",
    ),
    pytest.param(
        Case(
            launch(customer_user_id="{{Profile.objectId}}"),
            (click("c1", H, af_sub5="{{Profile.objectId}}"),),
            organic(),
            {"c1": "no_match"},
        ),
        id="unsubstituted_placeholder_never_matches",
    ),
    pytest.param(
        Case(
            launch(customer_user_id=CUID),
            (click("c1", H, af_sub5=CUID.upper()),),
            organic(),
            {"c1": "no_match"},
        ),
        id="customer_user_id_is_case_sensitive",
    ),
    pytest.param(
        Case(launch(ip=IP), (click("c1", H, ip=IP),), won("c1", "probabilistic")),
        id="probabilistic_same_ip_and_platform_matches",
    ),
    pytest.param(
        Case(
            launch(ip=IP, os_version="14"),
            (click("c1", H, ip=IP, os_version="13"),),
            organic(),
            {"c1": "os_version_mismatch"},
        ),
        id="probabilistic_os_version_mismatch_is_organic",
    ),
    pytest.param(
        Case(
            launch(ip=IP, platform="ios", os_version="17.1.0"),
            (click("c1", H, ip=IP, platform="ios", os_version="17.1"),),
            won("c1", "probabilistic"),
        ),
        id="probabilistic_os_version_trailing_zero_is_same",
    ),
    pytest.param(
        Case(launch(ip=IP, os_version="14"), (click("c1", H, ip=IP),), won("c1", "probabilistic")),
        id="probabilistic_unknown_click_os_version_still_matches",
    ),
    pytest.param(
        Case(
            launch(ip=IP, platform="ios"),
            (click("c1", H, ip=IP, platform="android"),),
            organic(),
            {"c1": "platform_mismatch"},
        ),
        id="probabilistic_platform_mismatch_is_organic",
    ),
    pytest.param(
        Case(
            launch(ip=IP),
            (click("c1", H, ip=IP, platform="desktop"),),
            organic(),
            {"c1": "platform_mismatch"},
        ),
        id="probabilistic_desktop_click_never_matches_app",
    ),
    pytest.param(
        Case(
            launch(ip=IP),
            (click("c1", H, ip=IP),),
            organic(),
            {"c1": "probabilistic_disabled"},
            app=AppRules(probabilistic_matching=False),
        ),
        id="probabilistic_switched_off_is_organic",
    ),
    pytest.param(
        Case(
            launch(ip=IP, gaid=GAID),
            (click("c1", H, ip=IP, gaid=GAID),),
            won("c1", "device_id"),
            app=AppRules(probabilistic_matching=False),
        ),
        id="probabilistic_off_keeps_device_id_matching",
    ),
    pytest.param(
        Case(launch(ip=IP), (click("c1", D, ip=IP),), won("c1", "probabilistic")),
        id="probabilistic_24h_exact_matches",
    ),
    pytest.param(
        Case(launch(ip=IP), (click("c1", D + S, ip=IP),), organic(), {"c1": "outside_lookback"}),
        id="probabilistic_24h_plus_1s_is_organic",
    ),
    pytest.param(
        Case(
            launch(ip=IP),
            (click("c1", 3 * H, ip=IP, af_click_lookback="1h"),),
            won("c1", "probabilistic"),
        ),
        id="probabilistic_ignores_per_link_lookback",
    ),
    pytest.param(
        Case(
            launch(ip=IP),
            (click("c1", 12 * H + S, ip=IP),),
            organic(),
            {"c1": "outside_lookback"},
            app=AppRules(click_lookback=12 * H),
        ),
        id="probabilistic_capped_by_shorter_app_lookback",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID, ip=IP),
            (click("c1", 2 * D, gaid=GAID, ip=IP),),
            won("c1", "device_id"),
        ),
        id="device_id_match_past_24h_still_wins",
    ),
    # --- installs: lookback windows ----------------------------------------------------------
    pytest.param(
        Case(launch(gaid=GAID), (click("c1", 7 * D, gaid=GAID),), won("c1", "device_id")),
        id="install_at_lookback_7d_exact_is_attributed",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 7 * D + S, gaid=GAID),),
            organic(),
            {"c1": "outside_lookback"},
        ),
        id="install_after_lookback_is_organic",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, gaid=GAID, af_click_lookback="1h"),),
            won("c1", "device_id"),
        ),
        id="per_link_lookback_1h_exact_is_attributed",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H + S, gaid=GAID, af_click_lookback="1h"),),
            organic(),
            {"c1": "outside_lookback"},
        ),
        id="per_link_lookback_1h_plus_1s_is_organic",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 20 * D, gaid=GAID, af_click_lookback="30d"),),
            won("c1", "device_id"),
        ),
        id="per_link_lookback_30d_beats_app_default",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 7 * D + S, gaid=GAID, af_click_lookback="soon"),),
            organic(),
            {"c1": "outside_lookback"},
        ),
        id="malformed_per_link_lookback_uses_app_default",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 8 * D, gaid=GAID, af_click_lookback="31d"),),
            organic(),
            {"c1": "outside_lookback"},
        ),
        id="out_of_range_per_link_lookback_uses_app_default",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", D + S, gaid=GAID),),
            organic(),
            {"c1": "outside_lookback"},
            app=AppRules(click_lookback=D),
        ),
        id="app_lookback_1d_plus_1s_is_organic",
    ),
    # --- installs: several clicks, priority, ties -------------------------------------------
    pytest.param(
        Case(
            launch(gaid=GAID),
            (
                click("c1", 3 * H, gaid=GAID),
                click("c2", 2 * H, gaid=GAID),
                click("c3", 5 * H, gaid=GAID),
            ),
            won("c2", "device_id"),
            {"c1": "superseded", "c3": "superseded"},
        ),
        id="last_click_wins",
    ),
    pytest.param(
        Case(
            launch(install_referrer="af_tranid=c1", ip=IP),
            (click("c1", 2 * H), click("c2", H, ip=IP)),
            won("c1", "referrer"),
            {"c2": "superseded"},
        ),
        id="referrer_beats_later_probabilistic_click",
    ),
    pytest.param(
        Case(
            launch(customer_user_id=CUID, ip=IP),
            (click("c1", 20 * H, af_sub5=CUID), click("c2", MIN, ip=IP)),
            won("c1", "customer_user_id"),
        ),
        id="customer_user_id_beats_later_probabilistic_click",
    ),
    pytest.param(
        Case(
            launch(install_referrer="af_tranid=c1", gaid=GAID),
            (click("c1", 2 * H), click("c2", H, gaid=GAID)),
            won("c2", "device_id"),
            {"c1": "superseded"},
        ),
        id="later_device_id_click_beats_earlier_referrer",
    ),
    pytest.param(
        Case(
            launch(install_referrer="af_tranid=c1", gaid=GAID),
            (click("c2", H, gaid=GAID), click("c1", H)),
            won("c1", "referrer"),
        ),
        id="tie_same_ts_prefers_stronger_method",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c9", H, gaid=GAID), click("c10", H, gaid=GAID), click("c2", H, gaid=GAID)),
            won("c9", "device_id"),
        ),
        id="tie_same_ts_same_method_larger_click_id_wins",
    ),
    pytest.param(
        Case(
            launch(ip=IP),
            (click("b", H, ip=IP), click("a", H, ip=IP)),
            won("b", "probabilistic"),
        ),
        id="tie_is_independent_of_input_order",
    ),
    pytest.param(
        Case(
            launch(install_referrer="af_tranid=c1", gaid=GAID),
            (click("c1", H, gaid=GAID),),
            won("c1", "referrer"),
        ),
        id="click_matched_twice_reports_strongest_method",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, gaid=GAID), click("c1", H, gaid=GAID)),
            won("c1", "device_id", passed_over=()),
        ),
        id="duplicate_click_rows_count_once",
    ),
    # --- installs: clicks that never win ------------------------------------------------------
    pytest.param(
        Case(
            launch(gaid=GAID), (click("c1", H, gaid=GAID, is_bot=True),), organic(), {"c1": "bot"}
        ),
        id="bot_click_never_wins",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 2 * H, gaid=GAID), click("c2", H, gaid=GAID, is_bot=True)),
            won("c1", "device_id"),
            {"c2": "bot"},
        ),
        id="later_bot_click_lets_earlier_human_click_win",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, gaid=GAID, attributable=False),),
            organic(),
            {"c1": "expired_link"},
        ),
        id="expired_link_click_never_wins",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 9 * S, gaid=GAID),),
            organic(suspected_injection=("c1",)),
            {"c1": "click_injection"},
        ),
        id="click_9s_before_install_is_injection",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 10 * S, gaid=GAID),),
            won("c1", "device_id", suspected_injection=()),
        ),
        id="click_10s_before_install_is_not_injection",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, gaid=GAID), click("c2", 2 * S, gaid=GAID)),
            won("c1", "device_id", suspected_injection=("c2",)),
            {"c2": "click_injection"},
        ),
        id="injected_click_lets_earlier_click_win",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", timedelta(0), gaid=GAID),),
            organic(suspected_injection=("c1",)),
        ),
        id="click_at_same_instant_as_install_is_injection",
    ),
    pytest.param(
        Case(launch(gaid=GAID), (click("c1", -S, gaid=GAID),), organic(), {"c1": "after_launch"}),
        id="launch_before_click_is_organic",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, gaid=GAID, consumed=True),),
            organic(),
            {"c1": "consumed"},
        ),
        id="consumed_click_does_not_win_again",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 2 * H, gaid=GAID), click("c2", H, gaid=GAID, consumed=True)),
            won("c1", "device_id"),
            {"c2": "consumed"},
        ),
        id="consumed_later_click_lets_earlier_click_win",
    ),
    pytest.param(
        Case(launch(gaid=GAID), (click("c1", H, gaid="other"),), organic(), {"c1": "no_match"}),
        id="click_of_another_device_is_passed_over",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, RT, gaid=GAID),),
            won("c1", "device_id", counts_as_install=True),
        ),
        id="retargeting_click_acquires_new_user_as_install",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID, first_launch=False),
            (click("c1", H, gaid=GAID),),
            won("c1", "device_id", counts_as_install=True),
        ),
        id="non_first_launch_of_unknown_device_is_install",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID, ts=T0 + H),
            (click("c1", 7 * D, gaid=GAID),),
            won("c1", "device_id", ts=T0),
            now=T0,
        ),
        id="launch_ts_in_future_is_capped_by_now",
    ),
    # --- deferred deep linking on first launch ------------------------------------------------
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 5 * MIN, {**UA, **DL}, gaid=GAID),),
            won("c1", "device_id", deep_link=DL_SAFE),
        ),
        id="deferred_deep_link_gives_only_deep_link_keys",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 15 * MIN, {**UA, **DL}, gaid=GAID),),
            won("c1", "device_id", deep_link=DL_SAFE),
        ),
        id="deferred_deep_link_15min_exact_found",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 15 * MIN + S, {**UA, **DL}, gaid=GAID),),
            won("c1", "device_id", deep_link={"status": "NOT_FOUND"}),
        ),
        id="deferred_deep_link_15min_plus_1s_not_found_but_attributed",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", MIN, gaid=GAID),),
            won("c1", "device_id", deep_link={"status": "NOT_FOUND"}),
        ),
        id="deferred_deep_link_without_values_not_found",
    ),
    pytest.param(
        Case(launch(), (), organic(deep_link={"status": "NOT_FOUND"})),
        id="organic_install_has_no_deep_link",
    ),
    pytest.param(
        Case(
            launch(
                deep_link_url="https://go.example.com/AbCd?pid=Email&deep_link_value=shoes&af_sub1=x"
            ),
            (),
            organic(deep_link={"status": "FOUND", "deep_link_value": "shoes"}),
        ),
        id="first_launch_via_deep_link_url_gets_only_deep_link_keys",
    ),
    # --- reinstalls and re-attribution --------------------------------------------------------
    pytest.param(
        Case(
            launch(gaid=GAID),
            (),
            {
                "type": "reinstall",
                "is_organic": False,
                "media_source": "SMS",
                "click_id": "c-orig",
                "match_type": "referrer",
                "counts_as_install": False,
                "counts_as_reengagement": False,
            },
            prior=install(30 * D),
        ),
        id="reinstall_inside_window_keeps_original_source",
    ),
    pytest.param(
        Case(launch(gaid=GAID), (), {"type": "reinstall"}, prior=install(90 * D)),
        id="reinstall_at_90d_exact_is_reinstall",
    ),
    pytest.param(
        Case(launch(gaid=GAID), (), organic(counts_as_install=True), prior=install(90 * D + S)),
        id="reinstall_after_90d_is_new_install",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, gaid=GAID),),
            won("c1", "device_id", counts_as_install=True),
            prior=install(100 * D),
        ),
        id="reinstall_outside_window_attributed_to_ua_click",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, gaid=GAID),),
            {"type": "reinstall", "winner": None, "counts_as_install": False},
            {"c1": "not_retargeting"},
            prior=install(10 * D),
        ),
        id="reinstall_ignores_ua_click",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, RT, gaid=GAID),),
            won(
                "c1",
                "device_id",
                "reattribution",
                media_source="Push",
                counts_as_install=False,
                counts_as_reengagement=True,
                reengagement_until=T0 + 30 * D,
            ),
            prior=install(10 * D),
        ),
        id="retargeting_click_before_reinstall_is_reattribution",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", H, RT, gaid=GAID, af_reengagement_window="36h"),),
            won("c1", "device_id", "reattribution", reengagement_until=T0 + 36 * H),
            prior=install(10 * D),
        ),
        id="reattribution_uses_link_reengagement_window",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 3 * D, RT, gaid=GAID),),
            {"type": "reinstall"},
            {"c1": "before_install"},
            prior=install(2 * D),
        ),
        id="retargeting_click_before_prior_install_does_not_reattribute",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (click("c1", 5 * S, RT, gaid=GAID),),
            {"type": "reinstall", "suspected_injection": ("c1",)},
            prior=install(10 * D),
        ),
        id="reattribution_click_injection_is_rejected",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (),
            organic(),
            prior=install(31 * D),
            app=AppRules(reattribution_window=30 * D),
        ),
        id="custom_reattribution_window_30d_plus_1d_is_new_install",
    ),
    pytest.param(
        Case(
            launch(gaid=GAID),
            (),
            {"type": "reinstall", "is_organic": True, "match_type": None, "click_time": None},
            prior=install(5 * D, organic=True),
        ),
        id="reinstall_of_organic_user_stays_organic",
    ),
    # --- existing users: opens and re-engagement ----------------------------------------------
    pytest.param(
        Case(
            launch(first_launch=False),
            (),
            {
                "type": "open",
                "is_organic": False,
                "media_source": "SMS",
                "counts_as_reengagement": False,
            },
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="open_without_clicks_reports_install_source",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", 2 * D, RT, gaid=GAID),),
            won(
                "c1",
                "device_id",
                "reengagement",
                counts_as_reengagement=True,
                reengagement_until=T0 + 30 * D,
            ),
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="retargeting_click_within_lookback_reengages",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", 7 * D, RT, gaid=GAID),),
            won("c1", "device_id", "reengagement"),
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="reengagement_lookback_7d_exact_counts",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", 7 * D + S, RT, gaid=GAID),),
            {"type": "open", "counts_as_reengagement": False},
            {"c1": "outside_lookback"},
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="reengagement_lookback_plus_1s_is_open",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", H, gaid=GAID),),
            {"type": "open"},
            {"c1": "not_retargeting"},
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="ua_click_does_not_reengage",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", 3 * D, RT, gaid=GAID),),
            {"type": "open"},
            {"c1": "before_install"},
            existing=install(2 * D, device_id="dev-new"),
        ),
        id="retargeting_click_before_install_does_not_reengage",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", 2 * S, RT, gaid=GAID),),
            won("c1", "device_id", "reengagement", suspected_injection=()),
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="click_seconds_before_open_is_not_injection",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", H, RT, gaid=GAID, consumed=True),),
            {"type": "open"},
            {"c1": "consumed"},
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="consumed_retargeting_click_does_not_reengage_again",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", H, RT, gaid=GAID, is_bot=True),),
            {"type": "open"},
            {"c1": "bot"},
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="bot_retargeting_click_does_not_reengage",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, ip=IP),
            (click("c1", 2 * H, RT, ip=IP),),
            won("c1", "probabilistic", "reengagement"),
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="retargeting_click_matched_probabilistically_reengages",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", H, RT, gaid=GAID, deep_link_value="cart", promo="p1"),),
            won(
                "c1",
                "device_id",
                "reengagement",
                deep_link={
                    "status": "FOUND",
                    **RT,
                    "deep_link_value": "cart",
                    "promo": "p1",
                    "gaid": GAID,
                },
            ),
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="winning_retargeting_click_gives_every_link_param",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", H, RT, gaid=GAID, af_reengagement_window="lifetime"),),
            won(
                "c1",
                "device_id",
                "reengagement",
                reengagement_until=None,
                reengagement_lifetime=True,
            ),
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="lifetime_reengagement_window_has_no_end",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", H, RT, gaid=GAID, af_reengagement_window="99d"),),
            won("c1", "device_id", "reengagement", reengagement_until=T0 + 30 * D),
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="out_of_range_reengagement_window_uses_app_default",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, gaid=GAID),
            (click("c1", H, RT, gaid=GAID),),
            won("c1", "device_id", "reengagement", reengagement_until=T0 + 45 * D),
            existing=install(10 * D, device_id="dev-new"),
            app=AppRules(reengagement_window=45 * D),
        ),
        id="app_reengagement_window_applies_without_link_value",
    ),
    # --- existing users: deep-link opens --------------------------------------------------------
    pytest.param(
        Case(
            launch(
                first_launch=False,
                deep_link_url="https://go.example.com/AbCd?pid=Push&c=winback&is_retargeting=true&deep_link_value=cart",
            ),
            (),
            {
                "type": "reengagement",
                "match_type": "deep_link",
                "media_source": "Push",
                "campaign": "winback",
                "click_id": None,
                "click_time": T0,
                "link_id": "link-push",
                "counts_as_reengagement": True,
                "reengagement_until": T0 + 30 * D,
                "deep_link": {
                    "status": "FOUND",
                    "pid": "Push",
                    "c": "winback",
                    "is_retargeting": "true",
                    "deep_link_value": "cart",
                },
            },
            existing=install(10 * D, device_id="dev-new"),
            deep_link_link_id="link-push",
        ),
        id="retargeting_deep_link_opens_reengage_with_click_to_open_0",
    ),
    pytest.param(
        Case(
            launch(
                first_launch=False,
                deep_link_url="https://go.example.com/AbCd?pid=Email&deep_link_value=shoes&promo=p1",
            ),
            (),
            {
                "type": "open",
                "media_source": "SMS",
                "deep_link": {
                    "status": "FOUND",
                    "pid": "Email",
                    "deep_link_value": "shoes",
                    "promo": "p1",
                },
            },
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="ua_deep_link_open_is_open_with_every_param",
    ),
    pytest.param(
        Case(
            launch(
                first_launch=False,
                deep_link_url="https://go.example.com/AbCd/x7Gk2pQa?af_tranid=c1",
            ),
            (click("c1", 2 * S, RT, deep_link_value="cart"),),
            won(
                "c1",
                "deep_link",
                "reengagement",
                deep_link={"status": "FOUND", **RT, "deep_link_value": "cart", "af_tranid": "c1"},
            ),
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="deep_link_url_naming_click_reengages_through_that_click",
    ),
    pytest.param(
        Case(
            launch(
                first_launch=False,
                deep_link_url="https://go.example.com/AbCd/x7Gk2pQa?af_tranid=c1",
            ),
            (click("c1", S, deep_link_value="shoes"),),
            {
                "type": "open",
                "media_source": "SMS",
                "deep_link": {
                    "status": "FOUND",
                    **UA,
                    "deep_link_value": "shoes",
                    "af_tranid": "c1",
                },
            },
            {"c1": "not_retargeting"},
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="deep_link_url_naming_ua_click_is_open_with_click_params",
    ),
    pytest.param(
        Case(
            launch(
                first_launch=False,
                deep_link_url="https://go.example.com/AbCd/x7Gk2pQa?af_tranid=c1&pid=Push&is_retargeting=true",
            ),
            (click("c1", H, RT, consumed=True),),
            {
                "type": "open",
                "deep_link": {"status": "FOUND", **RT, "af_tranid": "c1"},
            },
            {"c1": "consumed"},
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="deep_link_url_of_consumed_click_is_plain_open",
    ),
    pytest.param(
        Case(
            launch(
                first_launch=False,
                deep_link_url="https://go.example.com/AbCd?af_tranid=nope&pid=Push&is_retargeting=true",
            ),
            (),
            {"type": "reengagement", "match_type": "deep_link", "click_id": None},
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="deep_link_url_with_unknown_click_id_uses_url_params",
    ),
    pytest.param(
        Case(
            launch(
                first_launch=False,
                deep_link_url="https://go.example.com/AbCd/x7Gk2pQa?deep_link_value=cart",
            ),
            (),
            {"type": "reengagement", "media_source": "Push", "link_id": "link-push"},
            existing=install(10 * D, device_id="dev-new"),
            deep_link_params=dict(RT),
            deep_link_link_id="link-push",
        ),
        id="short_link_stored_params_make_deep_link_open_reengage",
    ),
    pytest.param(
        Case(
            launch(
                first_launch=False, deep_link_url="https://go.example.com/AbCd/x7Gk2pQa?c=override"
            ),
            (),
            {"type": "reengagement", "campaign": "override"},
            existing=install(10 * D, device_id="dev-new"),
            deep_link_params=dict(RT),
        ),
        id="deep_link_url_query_overrides_stored_params",
    ),
    pytest.param(
        Case(
            launch(first_launch=False, deep_link_url="https://go.example.com/AbCd/x7Gk2pQa"),
            (),
            {
                "type": "open",
                "counts_as_reengagement": False,
                "deep_link": {"status": "FOUND", **RT},
            },
            existing=install(10 * D, device_id="dev-new"),
            deep_link_params=dict(RT),
            deep_link_attributable=False,
        ),
        id="expired_retargeting_deep_link_is_plain_open",
    ),
    pytest.param(
        Case(
            launch(
                first_launch=False,
                deep_link_url="https://go.example.com/AbCd?pid=Push&is_retargeting=true&af_reengagement_window=12h",
            ),
            (),
            {"type": "reengagement", "reengagement_until": T0 + 12 * H},
            existing=install(10 * D, device_id="dev-new"),
        ),
        id="deep_link_url_reengagement_window_from_link",
    ),
]


@pytest.mark.parametrize("case", LAUNCH_CASES)
def test_attribute_launch(case: Case) -> None:
    decision = attribute_launch(
        case.launch,
        app=case.app,
        clicks=case.clicks,
        existing=case.existing,
        prior=case.prior,
        now=case.now,
        deep_link_params=case.deep_link_params,
        deep_link_link_id=case.deep_link_link_id,
        deep_link_attributable=case.deep_link_attributable,
    )
    for name, expected in case.expect.items():
        actual = getattr(decision, name)
        if name == "deep_link":
            actual = dict(actual)
        assert actual == expected, name
    passed = dict(decision.passed_over)
    for click_id, reason in case.passed.items():
        assert passed.get(click_id) == reason, click_id
    if decision.winner is not None:
        assert decision.winner.click_id not in passed
        assert decision.click_id == decision.winner.click_id


# --- events ----------------------------------------------------------------------------------

REENGAGED = ReengagementFacts(
    started_at=T0,
    until=T0 + 30 * D,
    lifetime=False,
    media_source="Push",
    campaign="winback",
    channel="push",
    link_id="link-push",
    click_id="c-rt",
)


@pytest.mark.parametrize(
    ("offset", "reengagement", "primary_source", "reengagement_source"),
    [
        pytest.param(H, None, "SMS", None, id="event_without_reengagement_has_install_source_only"),
        pytest.param(
            D, REENGAGED, "SMS", "Push", id="event_inside_reengagement_window_has_both_sources"
        ),
        pytest.param(
            timedelta(0), REENGAGED, "SMS", "Push", id="event_at_reengagement_start_counts"
        ),
        pytest.param(
            30 * D, REENGAGED, "SMS", "Push", id="event_at_reengagement_window_end_counts"
        ),
        pytest.param(
            30 * D + S, REENGAGED, "SMS", None, id="event_after_reengagement_window_install_only"
        ),
        pytest.param(-S, REENGAGED, "SMS", None, id="event_before_reengagement_install_only"),
        pytest.param(
            400 * D,
            replace(REENGAGED, until=None, lifetime=True),
            "SMS",
            "Push",
            id="event_years_later_in_lifetime_window_has_both_sources",
        ),
    ],
)
def test_attribute_event(
    offset: timedelta,
    reengagement: ReengagementFacts | None,
    primary_source: str,
    reengagement_source: str | None,
) -> None:
    result = attribute_event(T0 + offset, install(10 * D, reengagement=reengagement))
    assert result.primary.media_source == primary_source
    assert not result.primary.is_organic
    got = result.reengagement.media_source if result.reengagement is not None else None
    assert got == reengagement_source


def test_event_without_install_is_organic() -> None:
    result = attribute_event(T0, None)
    assert result.primary.is_organic
    assert result.reengagement is None


def test_event_of_organic_install_keeps_reengagement_source() -> None:
    result = attribute_event(T0 + H, install(10 * D, organic=True, reengagement=REENGAGED))
    assert result.primary.is_organic
    assert result.reengagement is not None
    assert result.reengagement.media_source == "Push"


def test_reengagement_decision_feeds_event_attribution() -> None:
    existing = install(10 * D, device_id="dev-new")
    decision = attribute_launch(
        launch(first_launch=False, gaid=GAID),
        app=AppRules(),
        clicks=[click("c1", H, RT, gaid=GAID, af_reengagement_window="1d")],
        existing=existing,
        prior=None,
    )
    facts = decision.reengagement_facts()
    assert facts is not None
    stored = replace(existing, reengagement=facts)
    assert attribute_event(T0 + D, stored).reengagement == decision.source
    assert attribute_event(T0 + D + S, stored).reengagement is None


def test_open_starts_no_reengagement() -> None:
    decision = attribute_launch(
        launch(first_launch=False),
        app=AppRules(),
        clicks=[],
        existing=install(D, device_id="dev-new"),
        prior=None,
    )
    assert decision.reengagement_facts() is None


# --- parsers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7d", 7 * D),
        ("1h", H),
        ("23h", 23 * H),
        ("30d", 30 * D),
        ("12H", 12 * H),
        ("24h", None),
        ("0d", None),
        ("31d", None),
        ("7", None),
        ("", None),
        (None, None),
        ("7days", None),
        ("-1d", None),
    ],
)
def test_parse_click_lookback(value: str | None, expected: timedelta | None) -> None:
    assert read_window(value, CLICK_LOOKBACK)[0] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30d", (30 * D, False)),
        ("36h", (36 * H, False)),
        ("37h", (None, False)),
        ("90d", (90 * D, False)),
        ("91d", (None, False)),
        ("lifetime", (None, True)),
        ("Lifetime", (None, True)),
        ("forever", (None, False)),
        (None, (None, False)),
    ],
)
def test_parse_reengagement_window(
    value: str | None, expected: tuple[timedelta | None, bool]
) -> None:
    assert read_window(value, REENGAGEMENT_WINDOW) == expected


def test_click_ids_from_query() -> None:
    assert click_ids_from_query("af_tranid=abc&pid=Email") == frozenset({"abc"})
    assert click_ids_from_query("af_tranid%3Dabc%26pid%3DEmail") == frozenset({"abc"})
    assert click_ids_from_query("utm_source=google-play") == frozenset()
    assert click_ids_from_query(None) == frozenset()


def test_click_facts_from_params_derives_everything() -> None:
    facts = click_facts_from_params(
        "c1",
        T0,
        {
            "pid": "Push",
            "c": "winback",
            "af_channel": "push",
            "is_retargeting": "TRUE",
            "idfa": "ABC-1",
            "android_id": "",
            "af_sub5": CUID,
            "af_click_lookback": "12h",
            "af_reengagement_window": "lifetime",
        },
    )
    assert (facts.media_source, facts.campaign, facts.channel) == ("Push", "winback", "push")
    assert facts.is_retargeting
    assert facts.device_ids == frozenset({"abc-1"})
    assert facts.customer_user_id == CUID
    assert facts.click_lookback == 12 * H
    assert facts.reengagement_window is None
    assert facts.reengagement_lifetime


def test_customer_user_id_param_beats_af_sub5() -> None:
    facts = click_facts_from_params(
        "c1", T0, {"pid": "Email", "customer_user_id": "a", "af_sub5": "b"}
    )
    assert facts.customer_user_id == "a"


# --- contract shapes and guards --------------------------------------------------------------


def test_attribution_dict_matches_contract() -> None:
    decision = attribute_launch(
        launch(install_referrer="af_tranid=c1"),
        app=AppRules(),
        clicks=[click("c1", H + timedelta(microseconds=250))],
        existing=None,
        prior=None,
    )
    assert decision.to_attribution_dict() == {
        "is_organic": False,
        "media_source": "Email",
        "campaign": "spring_sale",
        "channel": "email",
        "match_type": "referrer",
        "click_id": "c1",
        "click_time": "2026-11-29T08:59:59Z",
        "link_id": "link-1",
    }
    assert decision.deep_link_dict() == {"status": "NOT_FOUND"}


def test_organic_attribution_dict() -> None:
    decision = attribute_launch(launch(), app=AppRules(), clicks=[], existing=None, prior=None)
    assert decision.to_attribution_dict() == {
        "is_organic": True,
        "media_source": "organic",
        "campaign": None,
        "channel": None,
        "match_type": None,
        "click_id": None,
        "click_time": None,
        "link_id": None,
    }


def test_candidate_keys_cover_every_method() -> None:
    keys = candidate_keys(
        launch(
            install_referrer="af_tranid=c1",
            deep_link_url="https://go.example.com/AbCd?af_tranid=c2",
            gaid=GAID.upper(),
            customer_user_id=CUID,
            ip=IP,
        ),
        AppRules(),
    )
    assert keys.click_ids == frozenset({"c1", "c2"})
    assert keys.device_ids == frozenset({GAID})
    assert keys.customer_user_id == CUID
    assert keys.ip == IP
    assert keys.id_since == T0 - 30 * D
    assert keys.ip_since == T0 - D
    assert keys.until == T0


def test_candidate_keys_skip_ip_when_probabilistic_is_off() -> None:
    keys = candidate_keys(launch(ip=IP), AppRules(probabilistic_matching=False))
    assert keys.ip is None


def test_repeated_first_launch_is_the_callers_retry() -> None:
    with pytest.raises(ValueError, match="retry"):
        attribute_launch(
            launch(),
            app=AppRules(),
            clicks=[],
            existing=install(H, device_id="dev-new"),
            prior=None,
        )


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        launch(ts=datetime(2026, 11, 29, 10, 0))  # a naive ts is the point of the test


def test_non_utc_timestamps_are_normalised() -> None:
    plus_two = timezone_offset(2)
    facts = click_facts_from_params("c1", datetime(2026, 11, 29, 12, 0, tzinfo=plus_two), UA)
    assert facts.ts == T0
    assert facts.ts.tzinfo == UTC


def timezone_offset(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


def test_decision_is_explainable_for_organic_install() -> None:
    decision: LaunchDecision = attribute_launch(
        launch(gaid=GAID, ip=IP),
        app=AppRules(),
        clicks=[
            click("bot", H, gaid=GAID, is_bot=True),
            click("old", 8 * D, gaid=GAID),
            click("exp", H, gaid=GAID, attributable=False),
            click("inj", 3 * S, gaid=GAID),
            click("late", -MIN, gaid=GAID),
            click("used", 2 * H, gaid=GAID, consumed=True),
        ],
        existing=None,
        prior=None,
    )
    assert decision.is_organic
    assert decision.passed_over == (
        ("old", "outside_lookback"),
        ("used", "consumed"),
        ("bot", "bot"),
        ("exp", "expired_link"),
        ("inj", "click_injection"),
        ("late", "after_launch"),
    )
    assert decision.suspected_injection == ("inj",)


# ---- the same open seen twice ----------------------------------------------------------------


def _push_reengagement(started: timedelta, link_id: str | None = "link-1") -> ReengagementFacts:
    return ReengagementFacts(
        started_at=T0 - started,
        until=T0 + 30 * D,
        lifetime=False,
        media_source="Push",
        campaign="winback",
        channel="push",
        link_id=link_id,
        click_id=None,
    )


@pytest.mark.parametrize(
    ("started", "click_age", "click_link", "tied"),
    [
        (2 * MIN, 1 * MIN, "link-1", True),  # the click reached us after the app reported it
        (11 * MIN, 1 * MIN, "link-1", True),  # click 10 min after the start: still the same
        (12 * MIN, 1 * MIN, "link-1", False),  # 11 min after: a new tap
        (2 * MIN, 1 * MIN, "link-2", False),  # another link: a new re-engagement
    ],
)
def test_a_click_right_after_a_reengagement_from_its_link_is_the_same_open(
    started: timedelta, click_age: timedelta, click_link: str, tied: bool
) -> None:
    existing = replace(install(10 * D), reengagement=_push_reengagement(started))
    existing = replace(existing, installed_at=T0 - started)  # as the caller passes it
    found = click("c-push", click_age, RT, link_id=click_link, idfv=IDFV)
    decision = attribute_launch(
        launch(first_launch=False, idfv=IDFV, device_id="dev-old"),
        app=AppRules(),
        clicks=[found],
        existing=existing,
        prior=None,
    )
    if tied:
        assert (decision.type, decision.counts_as_reengagement) == ("open", False)
        assert decision.tied_clicks == ("c-push",)
        assert dict(decision.passed_over) == {"c-push": "same_open"}
    else:
        assert (decision.type, decision.counts_as_reengagement) == ("reengagement", True)
        assert decision.tied_clicks == ()


def test_a_link_reported_again_right_after_its_reengagement_is_the_same_open() -> None:
    existing = replace(install(10 * D), reengagement=_push_reengagement(3 * MIN, link_id=None))
    url = "https://go.example.com/AbCd?pid=Push&c=winback&af_channel=push&is_retargeting=true"
    decision = attribute_launch(
        launch(first_launch=False, device_id="dev-old", deep_link_url=url),
        app=AppRules(),
        clicks=[],
        existing=existing,
        prior=None,
    )
    assert (decision.type, decision.counts_as_reengagement) == ("open", False)
    assert decision.deep_link["status"] == "FOUND"
