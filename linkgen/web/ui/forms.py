"""Form fields <-> the JSON bodies the services validate.

The pages post plain HTML forms; these helpers turn them into the same bodies the JSON API
takes, so validation stays in one place (`linkgen.domain`) and errors name the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from linkgen.domain import links as link_rules
from linkgen.domain.errors import InvalidParameter
from linkgen.domain.links import CHANNELS, DEFAULT_MEDIA_SOURCE, split_tags

# Params with their own input in the builder; every other param is an "extra" key/value row.
DEDICATED_PARAMS = (
    "deep_link_value",
    "deep_link_sub1",
    "deep_link_sub2",
    "af_dp",
    "af_force_deeplink",
    "af_web_dp",
)
# Dedicated params that are a checkbox in the builder: checked sends "true", else nothing.
FLAG_PARAMS = frozenset({"af_force_deeplink"})
# Params a CleverTap placeholder is usually put into (the picker's choices).
PERSONALISE_TARGETS = (
    "af_sub5",
    "af_sub1",
    "af_sub2",
    "af_sub3",
    "af_sub4",
    "deep_link_sub1",
    "deep_link_sub2",
    "deep_link_sub3",
    "customer_user_id",
)
# CleverTap Liquid placeholders a campaign manager can insert (label, placeholder).
PLACEHOLDERS = (
    ("CleverTap ID", "{{Profile.objectId}}"),
    ("Identity", "{{Profile.identity}}"),
    ("Email", "{{Profile.email}}"),
    ("Name", "{{Profile.name}}"),
    ("Phone", "{{Profile.phone}}"),
)
MAX_EXTRA_ROWS = 60
# The builder's and the link page's tags field: tags separated by commas, as people type lists.
FORM_TAG_SEPARATOR = ","
DETAIL_FIELDS = ("title", "tags", "notes")
# What the pages say and set (maxlength) about them: the domain's limits.
DETAIL_LIMITS: dict[str, int | str] = {
    "title": link_rules.MAX_TITLE_CHARS,
    "tags": link_rules.MAX_TAGS,
    "tag": link_rules.MAX_TAG_CHARS,
    "tag_chars": link_rules.TAG_CHARS,
    "notes": link_rules.MAX_NOTES_CHARS,
}


def form_field(field: str | None) -> str:
    """The form field an error names: `tags[2]` is the one tags input."""
    if field is not None and field.startswith("tags["):
        return "tags"
    return field or "form"


def details_body(form: Mapping[str, str]) -> dict[str, Any]:
    """The title, tags and notes of a posted form, as the JSON API takes them (empty: none)."""
    return {
        "title": form.get("title", "").strip() or None,
        "tags": split_tags(form.get("tags", ""), FORM_TAG_SEPARATOR),
        "notes": form.get("notes", "").strip() or None,
    }


def tags_text(tags: Any) -> str:
    """A link's tags as the tags field shows them."""
    return ", ".join(str(tag) for tag in tags or ())


@dataclass
class LinkForm:
    """The builder's fields as the user typed them (for re-displaying the form)."""

    template_id: str = ""
    channel: str = "email"
    campaign: str = ""
    media_source: str = ""
    short: str = "auto"  # auto | short | long
    ttl: str = ""
    title: str = ""
    tags: str = ""  # as typed: tags separated by commas
    notes: str = ""
    params: dict[str, str] = field(default_factory=dict)  # the dedicated params
    extras: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: MultiDict[str, str]) -> LinkForm:
        """Read the posted fields (missing fields take their defaults)."""
        keys = form.getlist("extra_key")[:MAX_EXTRA_ROWS]
        values = form.getlist("extra_value")[:MAX_EXTRA_ROWS]
        extras = [(k, values[i] if i < len(values) else "") for i, k in enumerate(keys)]
        return cls(
            template_id=form.get("template_id", ""),
            channel=form.get("channel", "email"),
            campaign=form.get("campaign", ""),
            media_source=form.get("media_source", ""),
            short=form.get("short", "auto"),
            ttl=form.get("ttl", ""),
            title=form.get("title", ""),
            tags=form.get("tags", ""),
            notes=form.get("notes", ""),
            params={p: _param_value(form, p) for p in DEDICATED_PARAMS},
            extras=[(k, v) for k, v in extras if k.strip() or v.strip()],
        )

    @classmethod
    def from_link(cls, link: Mapping[str, Any]) -> LinkForm:
        """The form of a stored link (its API shape)."""
        params: dict[str, str] = dict(link.get("params") or {})
        dedicated = {p: params.pop(p, "") for p in DEDICATED_PARAMS}
        if link.get("channel") == "push":
            params.pop("is_retargeting", None)  # push sets it itself
        return cls(
            template_id=str(link.get("template_id") or ""),
            channel=str(link.get("channel") or "custom"),
            campaign=str(link.get("campaign") or ""),
            media_source=str(link.get("media_source") or ""),
            short="short" if link.get("short") else "long",
            ttl=str(link.get("ttl") or ""),
            title=str(link.get("title") or ""),
            tags=tags_text(link.get("tags")),
            notes=str(link.get("notes") or ""),
            params=dedicated,
            extras=list(params.items()),
        )

    def to_body(self, *, with_template: bool = True, with_short: bool = True) -> dict[str, Any]:
        """The POST /api/v1/links body these fields stand for."""
        body: dict[str, Any] = {"channel": self.channel}
        if with_template:
            body["template_id"] = self.template_id
        if self.campaign:
            body["campaign"] = self.campaign
        if self.media_source:
            body["media_source"] = self.media_source
        params: dict[str, str] = {}
        for key, value in self.params.items():
            if value != "":
                params[key] = value
        for index, (key, value) in enumerate(self.extras):
            name = key.strip()
            if not name:
                raise InvalidParameter("give this parameter a name", field=f"extra[{index}]")
            if name in params:
                raise InvalidParameter(f"{name} is given twice", field=f"params.{name}")
            params[name] = value
        if params:
            body["params"] = params
        if with_short and self.short in ("short", "long"):
            body["short"] = self.short == "short"
        if self.ttl.strip():
            body["ttl"] = self.ttl.strip()
        details = details_body({"title": self.title, "tags": self.tags, "notes": self.notes})
        body.update({name: value for name, value in details.items() if value})
        return body


def channel_choices() -> list[tuple[str, str]]:
    """(value, label) of each channel, with its default media source."""
    out = []
    for channel in CHANNELS:
        default = DEFAULT_MEDIA_SOURCE.get(channel)
        label = f"{channel} (media source {default})" if default else f"{channel}"
        out.append((channel, label))
    return out


def _param_value(form: Any, name: str) -> str:
    value = str(form.get(f"param_{name}", ""))
    if name in FLAG_PARAMS:
        return "true" if value.strip().lower() in ("on", "true", "1") else ""
    return value
