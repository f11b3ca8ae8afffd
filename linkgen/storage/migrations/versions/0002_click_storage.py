"""click storage: the `ts` index retention walks on launches, counters by link

Revision ID: 0002_click_storage
Revises: 0001
Create Date: 2026-11-30 08:30:00

`ix_launches_ts` lets `linkgen retention` delete the oldest launches batch by batch without
reading the table; `ix_stat_counters_link_day` serves the link list's totals and a link's daily
chart (docs/scaling.md, "Click storage"). On PostgreSQL both are built CONCURRENTLY, so that a
large `launches` table keeps taking launches during the upgrade.
"""

from __future__ import annotations

from alembic import op

revision = "0002_click_storage"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_launches_ts", "launches", ["ts"]),
    ("ix_stat_counters_link_day", "stat_counters", ["link_id", "day"]),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
        with op.get_context().autocommit_block():
            for name, table, columns in INDEXES:
                op.create_index(name, table, columns, postgresql_concurrently=True)
    else:
        for name, table, columns in INDEXES:
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
