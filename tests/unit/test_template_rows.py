"""`TemplateRows`, the template rows a database keeps for link writes (no database here: the
edits it follows are in tests/integration/test_template_rows.py)."""

from __future__ import annotations

from linkgen.storage.template_rows import TemplateRows


def test_a_row_is_kept_until_it_expires() -> None:
    rows = TemplateRows(ttl=1.0)
    rows.keep(rows.generation, 100.0, [("AbCd", "go.example.com", ("example.com",))])
    assert rows.fresh("AbCd", 100.5) == ("go.example.com", ("example.com",))
    assert rows.fresh("AbCd", 101.0) is None
    assert rows.fresh("Nope", 100.5) is None


def test_clear_forgets_and_drops_rows_read_before_it() -> None:
    rows = TemplateRows()
    rows.keep(rows.generation, 100.0, [("AbCd", "go.example.com", ())])
    read_at = rows.generation  # a reader starts, then an edit commits
    rows.clear()
    assert rows.fresh("AbCd", 100.1) is None
    rows.keep(read_at, 100.1, [("AbCd", "old.example.com", ())])
    assert rows.fresh("AbCd", 100.2) is None and len(rows) == 0
    rows.keep(rows.generation, 100.2, [("AbCd", "go.example.com", ())])
    assert rows.fresh("AbCd", 100.3) == ("go.example.com", ())


def test_past_the_bound_the_rows_start_over() -> None:
    rows = TemplateRows(max_entries=2)
    rows.keep(rows.generation, 0.0, [(f"T{i}", "go.example.com", ()) for i in range(3)])
    rows.keep(rows.generation, 0.0, [("Last", "go.example.com", ())])
    assert len(rows) == 1 and rows.fresh("Last", 0.1) is not None


def test_two_caches_share_nothing() -> None:
    one, two = TemplateRows(), TemplateRows()
    one.keep(one.generation, 0.0, [("AbCd", "go.example.com", ())])
    assert two.fresh("AbCd", 0.1) is None
    two.clear()
    assert one.fresh("AbCd", 0.1) == ("go.example.com", ())
