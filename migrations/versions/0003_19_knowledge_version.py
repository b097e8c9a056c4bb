"""knowledge version and change log (issue 19: persisted index, workers in step)

Revision ID: 19_kbver
Revises: 02_i14_tokens
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "19_kbver"
down_revision: str | None = "02_i14_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    state = op.create_table(
        "knowledge_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("full_version", sa.BigInteger(), nullable=False),
        sa.Column("kb_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "knowledge_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("knowledge_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_knowledge_changes_version"), ["version"], unique=False)
    # Version 1 stands for whatever the entries hold now: a worker's index starts by building it.
    op.bulk_insert(state, [{"id": 1, "version": 1, "full_version": 1, "kb_id": secrets.token_hex(8)}])


def downgrade() -> None:
    with op.batch_alter_table("knowledge_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_changes_version"))
    op.drop_table("knowledge_changes")
    op.drop_table("knowledge_state")
