"""rate_buckets unlogged on PostgreSQL: a rate limit's counts need no write-ahead log (issue 16, load)

Every web request takes two buckets, each in its own autocommit statement, and every request of one
address takes the same row: with the table logged, each take waited for a WAL flush while holding that
row. Unlogged, a crash of the server empties the table (every bucket starts full again), which is all
a rate limit can lose. SQLite has no such thing (and keeps its buckets in memory: ``bot.limits``).

Revision ID: i16u_rate_buckets_unlogged
Revises: i16p_daily_stats
"""

from collections.abc import Sequence

from alembic import op

revision: str = "i16u_rate_buckets_unlogged"
down_revision: str | None = "i16p_daily_stats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_buckets SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_buckets SET LOGGED")
