"""launch writes: drop `ix_launches_app_device`, which no query reads

Revision ID: 0003_launch_writes
Revises: 0002_click_storage
Create Date: 2026-11-29 11:30:00

Every launch wrote an entry into `ix_launches_app_device` at a random place (device ids are
random), one more page for each launch's transaction to write and for each SQLite checkpoint to
copy back, yet nothing reads launches by device: a device's state is in `installs`, and
launches are read by `launch_id` and in `ts` order. The downgrade builds it again.
"""

from __future__ import annotations

from alembic import op

revision = "0003_launch_writes"
down_revision = "0002_click_storage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(
                "ix_launches_app_device", table_name="launches", postgresql_concurrently=True
            )
    else:
        op.drop_index("ix_launches_app_device", table_name="launches")


def downgrade() -> None:
    op.create_index("ix_launches_app_device", "launches", ["app_id", "device_id"])
