"""Bot reasons and click outcomes in words (linkgen/domain/explain.py)."""

from __future__ import annotations

import pytest

from linkgen.domain.explain import bot_reason_text, outcome_text


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("scanner:message", "opened several links of one message within seconds"),
        ("scanner:microsoft_safelinks", "Email security scanner (Microsoft Safe Links)"),
        ("scanner:mimecast", "Email security scanner (Mimecast)"),
        ("preview:slackbot", "Link-preview crawler (Slackbot)"),
        ("preview:whatsapp", "Link-preview crawler (WhatsApp)"),
        ("automation:headless_chrome", "Automated tool (headless Chrome)"),
        ("automation:curl", "Automated tool (Curl)"),
        ("crawler", "Web crawler"),
        ("empty_user_agent", "No user agent"),
        ("something_new", "A bot (something_new)."),
        ("", "A bot (no reason recorded)."),
        (None, "A bot (no reason recorded)."),
    ],
)
def test_every_bot_reason_reads_as_words(reason: str | None, words: str) -> None:
    assert words in bot_reason_text(reason)


@pytest.mark.parametrize(
    ("outcome", "words"),
    [("google_play", "Google Play"), ("preview", "Preview card"), ("odd", "odd"), (None, "—")],
)
def test_outcomes_read_as_words(outcome: str | None, words: str) -> None:
    assert outcome_text(outcome) == words
