"""users: `role` (admin, editor, viewer), and `invitations`, one-time links to join the team

Revision ID: 0008_user_roles
Revises: 0007_session_generation
Create Date: 2026-12-03 06:00:00

Every user who existed before this migration could do everything, so they all become admins.
An invitation keeps only the SHA-256 of its token, like an API key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from linkgen.storage.types import UTCDateTime

revision = "0008_user_roles"
down_revision = "0007_session_generation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="admin")
        )
    op.create_table(
        "invitations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=300), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("invitations")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("role")
