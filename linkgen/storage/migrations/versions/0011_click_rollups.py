"""click rollups: clicks per day by platform, OS, country and referrer; the counters per day and
campaign, channel and media source; their watermarks

Revision ID: 0011_click_rollups
Revises: 0010_link_details
Create Date: 2026-12-03 12:00:00

`click_rollups` holds, per UTC day, the human and bot clicks of each platform, OS (platform and
major version), country (from the stored client address) and referrer host, for all clicks and
within each campaign, channel and media source. The worker fills it from `clicks` past
`rollup_watermarks` (`clicks`: the last click id rolled up), so clicks that exist at the upgrade
are rolled up by the worker in batches from id 0 (or at once with `linkgen rollup-clicks`).

`counter_rollups` holds `stat_counters` summed per UTC day and campaign, channel and media
source (without link and template: a few hundred rows a day instead of one per link), for days
before yesterday; the worker builds it (days from the oldest counter on, a week a step) and rebuilds a
day when a late launch or event counts in it (`rollup_watermarks` `launches`, `events`).

The partial indexes of 0009 on clicks (`ix_clicks_link_ts`, `ix_clicks_campaign_ts`) stay: the
click log still pages raw clicks of one link or campaign, which no rollup can answer.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from linkgen.storage.types import UTCDateTime

revision = "0011_click_rollups"
down_revision = "0010_link_details"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "click_rollups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_value", sa.String(length=150), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("human_clicks", sa.BigInteger(), nullable=False),
        sa.Column("bot_clicks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_click_rollups")),
        sa.UniqueConstraint(
            "scope", "scope_value", "dimension", "day", "value", name="uq_click_rollups_key"
        ),
    )
    op.create_table(
        "counter_rollups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("media_source", sa.String(length=150), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in (
                "clicks",
                "human_clicks",
                "bot_clicks",
                "installs",
                "reengagements",
                "events",
                "revenue_micros",
            )
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counter_rollups")),
        sa.UniqueConstraint(
            "day", "campaign", "channel", "media_source", name="uq_counter_rollups_key"
        ),
    )
    op.create_table(
        "rollup_watermarks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_watermarks")),
    )


def downgrade() -> None:
    op.drop_table("rollup_watermarks")
    op.drop_table("counter_rollups")
    op.drop_table("click_rollups")
