"""registry store

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolment",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("programme", sa.String(length=8), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("nik_token", sa.String(length=32), nullable=False),
        sa.Column("kk_token", sa.String(length=32), nullable=False),
        sa.Column("desa_code", sa.String(length=13), nullable=False),
        sa.Column("kecamatan_code", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_enrolment_household_id"), "enrolment", ["household_id"], unique=False)
    op.create_index(
        op.f("ix_enrolment_kecamatan_code"), "enrolment", ["kecamatan_code"], unique=False
    )
    op.create_index(op.f("ix_enrolment_kk_token"), "enrolment", ["kk_token"], unique=False)
    op.create_index(op.f("ix_enrolment_nik_token"), "enrolment", ["nik_token"], unique=False)
    op.create_index(
        "ix_enrolment_programme_period", "enrolment", ["programme", "period"], unique=False
    )
    op.create_table(
        "household",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("no_kk", sa.String(length=16), nullable=False),
        sa.Column("kk_token", sa.String(length=32), nullable=False),
        sa.Column("desa_code", sa.String(length=13), nullable=False),
        sa.Column("kecamatan_code", sa.String(length=8), nullable=False),
        sa.Column("kabupaten_code", sa.String(length=5), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("desil", sa.Integer(), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_household_kecamatan_code"), "household", ["kecamatan_code"], unique=False
    )
    op.create_index(op.f("ix_household_kk_token"), "household", ["kk_token"], unique=False)
    op.create_table(
        "member",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("nik", sa.String(length=16), nullable=False),
        sa.Column("nik_token", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("relationship", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_member_household_id"), "member", ["household_id"], unique=False)
    op.create_index(op.f("ix_member_nik_token"), "member", ["nik_token"], unique=False)
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("partition", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("reason_codes", sa.String(length=400), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "payload_hash", name="uq_quarantine_payload"),
    )
    op.create_index(op.f("ix_quarantine_source"), "quarantine", ["source"], unique=False)
    op.create_index(op.f("ix_quarantine_status"), "quarantine", ["status"], unique=False)
    op.create_table(
        "region",
        sa.Column("code", sa.String(length=13), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("parent_code", sa.String(length=10), nullable=True),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(op.f("ix_region_parent_code"), "region", ["parent_code"], unique=False)
    op.create_table(
        "sync_cursor",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("partition", sa.String(length=20), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pass_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pass_high", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "partition"),
    )


def downgrade() -> None:
    op.drop_table("sync_cursor")
    op.drop_index(op.f("ix_region_parent_code"), table_name="region")
    op.drop_table("region")
    op.drop_index(op.f("ix_quarantine_status"), table_name="quarantine")
    op.drop_index(op.f("ix_quarantine_source"), table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_index(op.f("ix_member_nik_token"), table_name="member")
    op.drop_index(op.f("ix_member_household_id"), table_name="member")
    op.drop_table("member")
    op.drop_index(op.f("ix_household_kk_token"), table_name="household")
    op.drop_index(op.f("ix_household_kecamatan_code"), table_name="household")
    op.drop_table("household")
    op.drop_index("ix_enrolment_programme_period", table_name="enrolment")
    op.drop_index(op.f("ix_enrolment_nik_token"), table_name="enrolment")
    op.drop_index(op.f("ix_enrolment_kk_token"), table_name="enrolment")
    op.drop_index(op.f("ix_enrolment_kecamatan_code"), table_name="enrolment")
    op.drop_index(op.f("ix_enrolment_household_id"), table_name="enrolment")
    op.drop_table("enrolment")
