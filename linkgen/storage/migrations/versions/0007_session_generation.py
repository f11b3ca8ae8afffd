"""users: `session_generation`, so logout and a new password end a user's sessions everywhere

Revision ID: 0007_session_generation
Revises: 0006_branded_domains
Create Date: 2026-12-02 22:40:00

Each browser session carries the generation it was issued under; logout, `linkgen
reset-password` and removing the user move it on, and an older session no longer logs anyone
in. Sessions issued before this migration carry none, so users log in once more after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_session_generation"
down_revision = "0006_branded_domains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
