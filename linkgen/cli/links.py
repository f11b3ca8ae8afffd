"""`linkgen import-links FILE.csv` and `linkgen export-qr`: bulk work on links from a shell."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from linkgen.domain.bulk import parse_links_csv_with_lines
from linkgen.domain.errors import LinkgenError
from linkgen.runtime import get_runtime
from linkgen.services import link_bulk, link_queries, link_templates, link_views
from linkgen.services.qr import FORMATS, parse_qr_options, render_png, render_svg


@click.command("import-links")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--template", "template_id", default=None, help="Template for rows without one.")
@with_appcontext
def import_links_cmd(file: Path, template_id: str | None) -> None:
    """Create links from a CSV (the bulk API's columns); exit 1 if any row failed."""
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text") from None
    rt = get_runtime()
    try:
        rows = parse_links_csv_with_lines(text)
        link_bulk.check_bulk_size(len(rows))
        with click.progressbar(length=len(rows), label="Importing links", file=sys.stderr) as bar:
            result = link_bulk.create_links_bulk(
                rt.db,
                rows,
                scheme_for=rt.settings.scheme_for,
                created_by="cli",
                default_template_id=template_id,
                progress=bar.update,
            )
    except LinkgenError as exc:
        raise click.ClickException(exc.message) from exc
    for item in result.results:
        if not item["ok"]:
            error = item["error"]
            where = f" {error['field']}:" if error.get("field") else ""
            click.echo(f"line {item['row']}:{where} {error['message']}", err=True)
    click.echo(f"created {result.created} link(s), {result.failed} row(s) failed")
    if result.failed:
        sys.exit(1)


@click.command("export-qr")
@click.option("--campaign", default=None, help="Only this campaign's links (default: all).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="png", show_default=True)
@click.option("--size", default="600", show_default=True, help="Pixels (64-4000).")
@click.option("--margin", default="4", show_default=True, help="Quiet zone in modules (0-40).")
@click.option("--ec", default="M", show_default=True, help="Error correction: L, M, Q or H.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write into (created if missing).",
)
@with_appcontext
def export_qr_cmd(
    campaign: str | None, fmt: str, size: str, margin: str, ec: str, out_dir: Path
) -> None:
    """Write one QR code per link, named by its shortlink id (else its link id)."""
    rt = get_runtime()
    render = render_png if fmt == "png" else render_svg
    written = 0
    expiring: list[str] = []
    used: set[str] = set()
    try:
        opts = parse_qr_options({"size": size, "margin": margin, "ec": ec})
        out_dir.mkdir(parents=True, exist_ok=True)
        with rt.db.session() as session:
            templates = link_templates.TemplateLookup(session, rt.settings.scheme_for)
            for chunk in link_queries.iter_links(
                session, link_queries.LinkFilter(campaign=campaign)
            ):
                templates.preload(link.template_id for link in chunk)
                for link in chunk:
                    data = link_views.qr_url(link, templates.require(link.template_id))
                    # Shortlink ids are unique per template only: fall back to the link id.
                    stem = link.shortlink_id if link.shortlink_id not in used else None
                    name = stem or link.id
                    used.add(name)
                    (out_dir / f"{name}.{fmt}").write_bytes(render(data, opts))
                    written += 1
                    if link.expires_at is not None:
                        expiring.append(name)
    except LinkgenError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"wrote {written} QR code(s) to {out_dir}")
    if expiring:
        shown = ", ".join(expiring[:5]) + (", ..." if len(expiring) > 5 else "")
        click.echo(
            f"warning: {len(expiring)} of these links expire ({shown}): a printed code stops "
            "working when its link expires. QR links made without a ttl never expire; "
            'PATCH /api/v1/links/{id} with {"ttl": null} makes a QR link permanent.',
            err=True,
        )


COMMANDS = [import_links_cmd, export_qr_cmd]
