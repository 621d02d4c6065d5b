"""desk accounts

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

# Registers the table on SQLModel.metadata whenever the migrations load, so that code which
# compares or drops the store's tables by that metadata (the tests) includes it.
import models.desk_tables  # noqa: F401

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=54), nullable=False),
        sa.Column("office", sa.String(length=60), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index(op.f("ix_desk_account_office"), "desk_account", ["office"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_desk_account_office"), table_name="desk_account")
    op.drop_table("desk_account")
