"""branded domains: link domains added at run time

Revision ID: 0006_branded_domains
Revises: 0005_not_found_url
Create Date: 2026-12-02 22:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from linkgen.storage.types import UTCDateTime

revision = "0006_branded_domains"
down_revision = "0005_not_found_url"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "branded_domains",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("seen_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_branded_domains")),
        sa.UniqueConstraint("domain", name=op.f("uq_branded_domains_domain")),
    )


def downgrade() -> None:
    op.drop_table("branded_domains")
