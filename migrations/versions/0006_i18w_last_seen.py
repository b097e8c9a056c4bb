"""conversations.last_seen_at: when the visitor last wrote or pressed anything (a channel that lets the
bot write first only for a while after that, WeChat's 48 hours, holds pushes outside it)

Revision ID: 18_last_seen
Revises: 18_subs
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "18_last_seen"
down_revision: str | None = "18_subs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("last_seen_at")
