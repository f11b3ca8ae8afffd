"""The OpenAPI document read for people: what `templates/api/docs.html` renders at /api/v1/docs.

Built from the served document itself (never from a second description), so the page shows
exactly what the document says: each operation's parameters, its request body's fields with
their types, limits, descriptions and examples, and its answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

Schema = dict[str, Any]
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class FieldRow:
    """One field of a schema, flattened for a table (`in_app_events.mappings[].policy`)."""

    name: str
    type: str
    required: bool
    rules: str
    description: str
    example: str


@dataclass
class SchemaView:
    name: str
    description: str
    rows: list[FieldRow]


@dataclass
class OperationView:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    auth: str
    params: list[FieldRow]
    body: SchemaView | None
    body_media: list[str]
    example: str | None
    answers: list[tuple[str, str, str | None]]  # status, description, schema name


@dataclass
class Reference:
    title: str
    version: str
    description: str
    tags: list[tuple[str, list[OperationView]]] = field(default_factory=list)
    schemas: list[SchemaView] = field(default_factory=list)


_CODE = re.compile(r"`([^`]+)`")


def inline_code(text: str) -> Markup:
    """Escape a description and show its `backticked` words as code."""
    return Markup(_CODE.sub(r"<code>\1</code>", str(escape(text))))  # noqa: S704 (escaped first)


def _name_of(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


class _Reader:
    def __init__(self, doc: Schema) -> None:
        self.doc = doc
        self.schemas: Schema = doc["components"]["schemas"]

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            target: Any = self.doc
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            schema = target
        return schema

    def type_of(self, schema: Schema) -> str:
        if "$ref" in schema:
            return _name_of(schema["$ref"])
        if "anyOf" in schema:
            kinds = [self.type_of(s) for s in schema["anyOf"]]
            return " or ".join(kinds)
        if "enum" in schema:
            return " | ".join(json.dumps(v) for v in schema["enum"])
        if "const" in schema:
            return json.dumps(schema["const"])
        kind = str(schema.get("type", "any"))
        if kind == "array":
            return f"list of {self.type_of(schema.get('items', {}))}"
        if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            return f"object of {self.type_of(schema['additionalProperties'])}"
        if "format" in schema:
            return f"{kind} ({schema['format']})"
        return kind

    def rules_of(self, schema: Schema) -> str:
        parts: list[str] = []
        for sub in [schema, *schema.get("anyOf", [])]:
            if "minLength" in sub and "maxLength" in sub and sub["minLength"] == sub["maxLength"]:
                parts.append(f"exactly {sub['maxLength']} characters")
            else:
                if "minLength" in sub:
                    parts.append(f"at least {sub['minLength']} characters")
                if "maxLength" in sub:
                    parts.append(f"at most {sub['maxLength']} characters")
            if "minimum" in sub:
                parts.append(f"≥ {sub['minimum']}")
            if "maximum" in sub:
                parts.append(f"≤ {sub['maximum']}")
            if "minItems" in sub:
                parts.append(f"at least {sub['minItems']} items")
            if "maxItems" in sub:
                parts.append(f"at most {sub['maxItems']} items")
            if "pattern" in sub and len(sub["pattern"]) <= 80:
                parts.append(f"matches {sub['pattern']}")
            if "default" in sub:
                parts.append(f"default {json.dumps(sub['default'])}")
        return "; ".join(dict.fromkeys(parts))

    def rows(self, schema: Schema, prefix: str = "", depth: int = 0) -> list[FieldRow]:
        schema = self.resolve(schema)
        required = set(schema.get("required", []))
        out: list[FieldRow] = []
        for name, prop in schema.get("properties", {}).items():
            examples = prop.get("examples")
            out.append(
                FieldRow(
                    name=prefix + name,
                    type=self.type_of(prop),
                    required=name in required,
                    rules=self.rules_of(prop),
                    description=str(prop.get("description", "")),
                    example=json.dumps(examples[0], ensure_ascii=False) if examples else "",
                )
            )
            nested = self._nested(prop)
            if nested is not None and depth < 3:
                target, suffix = nested
                out.extend(self.rows(target, f"{prefix}{name}{suffix}.", depth + 1))
        return out

    def _nested(self, prop: Schema) -> tuple[Schema, str] | None:
        """A request body's inner object (in_app_events, mappings[]), to list its fields."""
        for sub in [prop, *prop.get("anyOf", [])]:
            if "$ref" in sub:
                return sub, ""
            items = sub.get("items")
            if sub.get("type") == "array" and isinstance(items, dict) and "$ref" in items:
                return items, "[]"
        return None

    def schema_view(self, name: str) -> SchemaView:
        schema = self.schemas[name]
        return SchemaView(name, str(schema.get("description", "")), self.rows(schema))


def reference(doc: Schema) -> Reference:
    """The document arranged for the page: operations by tag, then every schema."""
    reader = _Reader(doc)
    info = doc["info"]
    ref = Reference(info["title"], info["version"], info["description"])
    by_tag: dict[str, list[OperationView]] = {t["name"]: [] for t in doc.get("tags", [])}
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            by_tag.setdefault(op["tags"][0], []).append(_operation_view(reader, path, method, op))
    ref.tags = [(tag, ops) for tag, ops in by_tag.items() if ops]
    ref.schemas = [reader.schema_view(name) for name in reader.schemas]
    return ref


def _operation_view(reader: _Reader, path: str, method: str, op: Schema) -> OperationView:
    security: list[dict[str, Any]] = op.get("security", reader.doc.get("security")) or []
    schemes = [name for entry in security for name in entry]
    auth = {
        "bearerAuth": "Authorization: Bearer <API key>",
        "sdkKey": "X-SDK-Key: <the app's SDK key>",
    }
    params = [
        FieldRow(
            name=f"{p['name']} ({p['in']})",
            type=reader.type_of(p["schema"]),
            required=bool(p.get("required")),
            rules=reader.rules_of(p["schema"]),
            description=str(p.get("description", "")),
            example="",
        )
        for p in op.get("parameters", [])
    ]
    body: SchemaView | None = None
    media: list[str] = []
    example: str | None = None
    request = op.get("requestBody")
    if request is not None:
        media = list(request["content"])
        content = request["content"].get("application/json", {})
        schema = content.get("schema", {})
        if "$ref" in schema:
            body = reader.schema_view(_name_of(schema["$ref"]))
        if "example" in content:
            example = json.dumps(content["example"], indent=2, ensure_ascii=False)
    answers: list[tuple[str, str, str | None]] = []
    for status, answer in op["responses"].items():
        answer = reader.resolve(answer)
        name = None
        for media_type in answer.get("content", {}).values():
            schema = media_type.get("schema", {})
            name = _name_of(schema["$ref"]) if "$ref" in schema else reader.type_of(schema)
        answers.append((status, str(answer.get("description", "")), name))
    return OperationView(
        anchor=f"{method}{path}".replace("/", "-").replace("{", "").replace("}", ""),
        method=method.upper(),
        path=path,
        summary=op["summary"],
        description=str(op.get("description", "")),
        auth=", ".join(auth[s] for s in schemes) or "none",
        params=params,
        body=body,
        body_media=media,
        example=example,
        answers=answers,
    )
