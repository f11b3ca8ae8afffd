"""templates: `not_found_url`, where an unknown or deleted short link on the template redirects

Revision ID: 0005_not_found_url
Revises: 0004_link_ttl_optional
Create Date: 2026-12-02 21:30:00

A nullable column: existing templates keep answering unknown short links with their
`web_fallback_url` when they have one (the default), else linkgen's 404 page.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_not_found_url"
down_revision = "0004_link_ttl_optional"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.add_column(sa.Column("not_found_url", sa.String(length=2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("not_found_url")
