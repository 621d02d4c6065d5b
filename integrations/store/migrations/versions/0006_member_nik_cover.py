"""member NIK index covers the household and status

Revision ID: 0006
Revises: 0005

The NIK-in-two-households check groups every living member by NIK token and compares
their households; the deceased-or-moved check probes members by NIK token for their status
and household. With the index on the token alone each member read was a look-up in the
table by id, in random order: at province size (20 M members) the largest share of the
checks' time. With the household and status in the index, both read the index alone.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_member_nik_token", table_name="member")
    op.create_index(
        "ix_member_nik_token", "member", ["nik_token", "household_id", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_member_nik_token", table_name="member")
    op.create_index("ix_member_nik_token", "member", ["nik_token"], unique=False)
