"""daily_stats: the statistics of days whose conversations were purged (issue 16, retention)

Revision ID: i16p_daily_stats
Revises: 16_rate_buckets
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i16p_daily_stats"
down_revision: str | None = "16_rate_buckets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_stats",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("daily_stats")
