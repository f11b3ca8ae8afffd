"""report indexes: the click log by link and by campaign, revenue events by time

Revision ID: 0009_report_indexes
Revises: 0008_user_roles
Create Date: 2026-12-03 06:30:00

The click log (`/reports/clicks`) pages newest first by (ts, id); filtered by a link or a
campaign (and a range of days) it reads `ix_clicks_link_ts` / `ix_clicks_campaign_ts` backwards
from the range's end instead of every newer click of the table. `ix_events_revenue_ts` holds only events that carry revenue, for
the revenue-per-currency sums of a range of days. All three are partial (NULLs are never asked
for), and on PostgreSQL built CONCURRENTLY so clicks keep being recorded during the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_report_indexes"
down_revision = "0008_user_roles"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_clicks_link_ts", "clicks", ["link_id", "ts", "id"], "link_id IS NOT NULL"),
    ("ix_clicks_campaign_ts", "clicks", ["campaign", "ts", "id"], "campaign IS NOT NULL"),
    ("ix_events_revenue_ts", "events", ["ts"], "revenue_micros IS NOT NULL"),
)


def upgrade() -> None:
    concurrently = op.get_bind().dialect.name == "postgresql"
    if concurrently:
        # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
        with op.get_context().autocommit_block():
            for name, table, columns, where in INDEXES:
                op.create_index(
                    name,
                    table,
                    columns,
                    postgresql_concurrently=True,
                    postgresql_where=sa.text(where),
                )
    else:
        for name, table, columns, where in INDEXES:
            op.create_index(name, table, columns, sqlite_where=sa.text(where))


def downgrade() -> None:
    for name, table, _columns, _where in INDEXES:
        op.drop_index(name, table_name=table)
