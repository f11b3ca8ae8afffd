"""links: a title, tags and notes for the people who manage them

Revision ID: 0010_link_details
Revises: 0009_report_indexes
Create Date: 2026-12-03 11:50:00

Three nullable columns on `links` (existing links have no title, tags or notes, and show what
they showed before), and `link_tags`, one row per tag of a link: the list filters by tag
through its (tag, link_id) index on SQLite and PostgreSQL alike, where a JSON column could be
indexed for membership on PostgreSQL only. `links.tags` keeps the tags as answered (in the
order given), so reading a link needs no second query. Deleting a link deletes its tags.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_link_details"
down_revision = "0009_report_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("title", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("tags", json_type, nullable=True))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))
    op.create_table(
        "link_tags",
        sa.Column("link_id", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
            name="fk_link_tags_link_id_links",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", "tag", name="pk_link_tags"),
    )
    op.create_index("ix_link_tags_tag", "link_tags", ["tag", "link_id"])


def downgrade() -> None:
    op.drop_index("ix_link_tags_tag", table_name="link_tags")
    op.drop_table("link_tags")
    with op.batch_alter_table("links") as batch:
        batch.drop_column("notes")
        batch.drop_column("tags")
        batch.drop_column("title")
