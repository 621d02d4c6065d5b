"""desk digests

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

# Registers the table on SQLModel.metadata whenever the migrations load (see 0003).
import models.desk_tables  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_digest",
        sa.Column("office", sa.String(length=60), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("office", "day", "kind"),
    )


def downgrade() -> None:
    op.drop_table("desk_digest")
