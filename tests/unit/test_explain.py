"""Every reason the attribution rules record for a passed-over click has plain words."""

from __future__ import annotations

import re
from pathlib import Path

from linkgen.domain import attribution
from linkgen.domain.explain import REASON_TEXT, explain_reason


def test_every_recorded_reason_is_explained() -> None:
    source = Path(attribution.__file__).read_text()
    recorded = set(re.findall(r'reason = "([a-z_]+)"', source))
    recorded |= set(re.findall(r'return "([a-z_]+)"\n', source))
    recorded |= {"outside_lookback", "no_match", "superseded"}
    assert recorded - set(REASON_TEXT) == set()
    assert {"click_injection", "bot", "consumed", "platform_mismatch"} <= recorded


def test_unknown_reason_is_shown_as_its_code() -> None:
    assert explain_reason("something_new") == "Passed over (something_new)."
    assert "10 seconds" in explain_reason("click_injection")
