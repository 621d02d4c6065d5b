"""coordination store

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("chain", sa.String(length=20), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("chain"),
    )
    op.create_table(
        "blt_recipient",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("desa_code", sa.String(length=13), nullable=False),
        sa.Column("kecamatan_code", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("nik_token", sa.String(length=32), nullable=False),
        sa.Column("kk_token", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_blt_recipient_kecamatan_code"), "blt_recipient", ["kecamatan_code"], unique=False
    )
    op.create_index(op.f("ix_blt_recipient_kk_token"), "blt_recipient", ["kk_token"], unique=False)
    op.create_index(
        op.f("ix_blt_recipient_nik_token"), "blt_recipient", ["nik_token"], unique=False
    )
    op.create_index("ix_blt_recipient_period", "blt_recipient", ["period"], unique=False)
    op.create_table(
        "data_request",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kecamatan_code", sa.String(length=8), nullable=False),
        sa.Column("ksk_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("desa_codes", sa.Text(), nullable=False),
        sa.Column("requested_on", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_data_request_kecamatan_code"), "data_request", ["kecamatan_code"], unique=False
    )
    op.create_table(
        "data_submission",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("desa_code", sa.String(length=13), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_data_submission_request_id"), "data_submission", ["request_id"], unique=False
    )
    op.create_table(
        "facilitator_report",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("facilitator_id", sa.String(length=64), nullable=False),
        sa.Column("kecamatan_code", sa.String(length=8), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("nik_token", sa.String(length=32), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_facilitator_report_household_id"),
        "facilitator_report",
        ["household_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_facilitator_report_kecamatan_code"),
        "facilitator_report",
        ["kecamatan_code"],
        unique=False,
    )
    op.create_index(
        op.f("ix_facilitator_report_nik_token"), "facilitator_report", ["nik_token"], unique=False
    )
    op.create_table(
        "farmer_need",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("nik_token", sa.String(length=32), nullable=False),
        sa.Column("poktan_id", sa.String(length=64), nullable=False),
        sa.Column("desa_code", sa.String(length=13), nullable=False),
        sa.Column("kecamatan_code", sa.String(length=8), nullable=False),
        sa.Column("land_area_ha", sa.Float(), nullable=False),
        sa.Column("commodity", sa.String(length=40), nullable=False),
        sa.Column("season", sa.String(length=8), nullable=False),
        sa.Column("urea_kg", sa.Float(), nullable=False),
        sa.Column("npk_kg", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_farmer_need_kecamatan_code"), "farmer_need", ["kecamatan_code"], unique=False
    )
    op.create_index(op.f("ix_farmer_need_nik_token"), "farmer_need", ["nik_token"], unique=False)
    op.create_index(op.f("ix_farmer_need_season"), "farmer_need", ["season"], unique=False)
    op.create_table(
        "handoff",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject_token", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("sender", sa.String(length=60), nullable=False),
        sa.Column("origin_office", sa.String(length=60), nullable=False),
        sa.Column("office", sa.String(length=60), nullable=False),
        sa.Column("kecamatan_code", sa.String(length=8), nullable=False),
        sa.Column("kabupaten_code", sa.String(length=5), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=False),
        sa.Column("officer", sa.String(length=60), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_handoff_kecamatan_code"), "handoff", ["kecamatan_code"], unique=False)
    op.create_index("ix_handoff_office_state", "handoff", ["office", "state"], unique=False)
    op.create_index("ix_handoff_state_due", "handoff", ["state", "due_date"], unique=False)
    op.create_table(
        "handoff_audit",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("handoff_id", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=12), nullable=True),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(
        op.f("ix_handoff_audit_handoff_id"), "handoff_audit", ["handoff_id"], unique=False
    )
    op.create_table(
        "handoff_delivery",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("handoff_id", sa.String(length=32), nullable=False),
        sa.Column("office", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("receipt_id", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_handoff_delivery_handoff_id"), "handoff_delivery", ["handoff_id"], unique=False
    )
    op.create_index(
        op.f("ix_handoff_delivery_status"), "handoff_delivery", ["status"], unique=False
    )
    op.create_table(
        "office_decision",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("handoff_id", sa.String(length=32), nullable=False),
        sa.Column("office", sa.String(length=60), nullable=False),
        sa.Column("decision", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("officer", sa.String(length=60), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_office_decision_applied_at"), "office_decision", ["applied_at"], unique=False
    )
    op.create_index(
        op.f("ix_office_decision_handoff_id"), "office_decision", ["handoff_id"], unique=False
    )
    op.create_table(
        "update_proposal",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("handoff_id", sa.String(length=32), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("verified_by", sa.String(length=60), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("receipt_id", sa.String(length=64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_update_proposal_handoff_id"), "update_proposal", ["handoff_id"], unique=False
    )
    op.create_index(op.f("ix_update_proposal_status"), "update_proposal", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_update_proposal_status"), table_name="update_proposal")
    op.drop_index(op.f("ix_update_proposal_handoff_id"), table_name="update_proposal")
    op.drop_table("update_proposal")
    op.drop_index(op.f("ix_office_decision_handoff_id"), table_name="office_decision")
    op.drop_index(op.f("ix_office_decision_applied_at"), table_name="office_decision")
    op.drop_table("office_decision")
    op.drop_index(op.f("ix_handoff_delivery_status"), table_name="handoff_delivery")
    op.drop_index(op.f("ix_handoff_delivery_handoff_id"), table_name="handoff_delivery")
    op.drop_table("handoff_delivery")
    op.drop_index(op.f("ix_handoff_audit_handoff_id"), table_name="handoff_audit")
    op.drop_table("handoff_audit")
    op.drop_index("ix_handoff_state_due", table_name="handoff")
    op.drop_index("ix_handoff_office_state", table_name="handoff")
    op.drop_index(op.f("ix_handoff_kecamatan_code"), table_name="handoff")
    op.drop_table("handoff")
    op.drop_index(op.f("ix_farmer_need_season"), table_name="farmer_need")
    op.drop_index(op.f("ix_farmer_need_nik_token"), table_name="farmer_need")
    op.drop_index(op.f("ix_farmer_need_kecamatan_code"), table_name="farmer_need")
    op.drop_table("farmer_need")
    op.drop_index(op.f("ix_facilitator_report_nik_token"), table_name="facilitator_report")
    op.drop_index(op.f("ix_facilitator_report_kecamatan_code"), table_name="facilitator_report")
    op.drop_index(op.f("ix_facilitator_report_household_id"), table_name="facilitator_report")
    op.drop_table("facilitator_report")
    op.drop_index(op.f("ix_data_submission_request_id"), table_name="data_submission")
    op.drop_table("data_submission")
    op.drop_index(op.f("ix_data_request_kecamatan_code"), table_name="data_request")
    op.drop_table("data_request")
    op.drop_index("ix_blt_recipient_period", table_name="blt_recipient")
    op.drop_index(op.f("ix_blt_recipient_nik_token"), table_name="blt_recipient")
    op.drop_index(op.f("ix_blt_recipient_kk_token"), table_name="blt_recipient")
    op.drop_index(op.f("ix_blt_recipient_kecamatan_code"), table_name="blt_recipient")
    op.drop_table("blt_recipient")
    op.drop_table("audit_head")
