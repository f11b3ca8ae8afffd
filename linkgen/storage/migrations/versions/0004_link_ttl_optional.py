"""link ttl optional: `links.ttl_seconds` may be NULL (the link never expires)

Revision ID: 0004_link_ttl_optional
Revises: 0003_launch_writes
Create Date: 2026-12-02 21:30:00

QR links that ask for no `ttl` never expire: a printed code must keep working. Such a link
stores no TTL (and no `expires_at`). Links stored before keep their TTL. The downgrade gives
the links without one the default 31 days again; their `expires_at` stays empty until a click
renews it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_link_ttl_optional"
down_revision = "0003_launch_writes"
branch_labels = None
depends_on = None

DEFAULT_TTL_SECONDS = 31 * 86400


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.alter_column("ttl_seconds", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute(
        f"UPDATE links SET ttl_seconds = {DEFAULT_TTL_SECONDS} WHERE ttl_seconds IS NULL"  # noqa: S608 - a constant
    )
    with op.batch_alter_table("links") as batch:
        batch.alter_column("ttl_seconds", existing_type=sa.Integer(), nullable=False)
