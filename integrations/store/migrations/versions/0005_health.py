"""health surveillance and zones

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surveillance_report",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("puskesmas_id", sa.String(length=64), nullable=False),
        sa.Column("desa_code", sa.String(length=13), nullable=False),
        sa.Column("kecamatan_code", sa.String(length=8), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("condition", sa.String(length=10), nullable=False),
        sa.Column("new_cases", sa.Integer(), nullable=False),
        sa.Column("tests", sa.Integer(), nullable=False),
        sa.Column("deaths", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_surveillance_report_week_kecamatan",
        "surveillance_report",
        ["week", "kecamatan_code"],
        unique=False,
    )
    op.create_table(
        "health_zone",
        sa.Column("area_code", sa.String(length=13), nullable=False),
        sa.Column("condition", sa.String(length=10), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("kecamatan_code", sa.String(length=8), nullable=False),
        sa.Column("zone", sa.String(length=8), nullable=False),
        sa.Column("trend", sa.String(length=8), nullable=False),
        sa.Column("red_since", sa.String(length=8), nullable=False),
        sa.Column("new_cases", sa.Integer(), nullable=False),
        sa.Column("previous_cases", sa.Integer(), nullable=False),
        sa.Column("deaths", sa.Integer(), nullable=False),
        sa.Column("population", sa.Float(), nullable=False),
        sa.Column("incidence_per_100k", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("area_code", "condition", "week"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_health_zone_kecamatan_week", "health_zone", ["kecamatan_code", "week"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_health_zone_kecamatan_week", table_name="health_zone")
    op.drop_table("health_zone")
    op.drop_index("ix_surveillance_report_week_kecamatan", table_name="surveillance_report")
    op.drop_table("surveillance_report")
