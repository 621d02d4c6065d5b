"""The desk's words in Bahasa Indonesia: kinds, states, actions, filters, evidence fields."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from models.desk import DeskAction, OfficeLevel, Role
from models.handoffs import HandoffKind, HandoffState

__all__ = [
    "ACTION_LABELS",
    "EVIDENCE_LABELS",
    "KIND_LABELS",
    "LEVEL_LABELS",
    "ROLE_LABELS",
    "STATE_LABELS",
    "STATUS_LABELS",
    "action_label",
]

KIND_LABELS: Mapping[str, str] = MappingProxyType(
    {
        HandoffKind.BLT_PKH_OVERLAP: "Penerima BLT-DD juga menerima PKH/BPNT",
        HandoffKind.NIK_MULTIPLE_HOUSEHOLDS: "Satu NIK di lebih dari satu keluarga/desa",
        HandoffKind.DECEASED_RECEIVING_AID: "Dilaporkan meninggal, masih menerima bantuan",
        HandoffKind.MOVED_RECEIVING_AID: "Dilaporkan pindah, masih menerima bantuan",
        HandoffKind.FARMER_MULTIPLE_GROUPS: "Petani terdaftar di lebih dari satu poktan",
        HandoffKind.FARMER_OVER_LAND_CAP: "Luas lahan petani melebihi batas 2 ha",
        HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION: "Verifikasi pembaruan data keluarga (PKH)",
        HandoffKind.HOUSEHOLD_UPDATE_REJECTED: "Pembaruan data keluarga ditolak kecamatan",
        HandoffKind.DATA_REQUEST: "Permintaan data statistik (KSK)",
    }
)

STATE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        HandoffState.OPEN: "Baru",
        HandoffState.DELIVERED: "Diterima kantor",
        HandoffState.ACKNOWLEDGED: "Ditindaklanjuti",
        HandoffState.RESOLVED: "Selesai",
        HandoffState.REJECTED: "Ditolak",
        HandoffState.ESCALATED: "Dieskalasi ke kabupaten/kota",
    }
)

ACTION_LABELS: Mapping[str, str] = MappingProxyType(
    {
        DeskAction.ACKNOWLEDGE: "Terima dan tindak lanjuti",
        DeskAction.RESOLVE: "Selesaikan",
        DeskAction.REJECT: "Tolak",
        DeskAction.RETURN: "Kembalikan ke provinsi (salah alamat)",
    }
)

STATUS_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "open": "Terbuka",
        "overdue": "Terlambat",
        "escalated": "Dieskalasi",
        "settled": "Selesai",
        "returned": "Dikembalikan (salah alamat)",
        "all": "Semua",
    }
)

LEVEL_LABELS: Mapping[str, str] = MappingProxyType(
    {
        OfficeLevel.PROVINCE: "Provinsi",
        OfficeLevel.KABUPATEN: "Kabupaten/Kota",
        OfficeLevel.KECAMATAN: "Kecamatan",
        OfficeLevel.DESA: "Desa/Kelurahan",
        OfficeLevel.PROGRAMME: "Program",
        OfficeLevel.FORKOPIMCAM: "Forkopimcam",
    }
)

ROLE_LABELS: Mapping[str, str] = MappingProxyType(
    {Role.VIEWER: "Pemantau", Role.OFFICER: "Petugas", Role.ADMIN: "Admin"}
)

EVIDENCE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "programmes": "Program",
        "desa_code": "Kode desa",
        "desa_codes": "Kode desa",
        "kecamatan_code": "Kode kecamatan",
        "kecamatan_codes": "Kode kecamatan",
        "blt_record_ids": "Data BLT-DD",
        "household_ids": "Keluarga",
        "report_ids": "Laporan pendamping",
        "facilitator_ids": "Pendamping",
        "poktan_ids": "Poktan",
        "land_area_ha": "Luas lahan (ha)",
        "season": "Musim tanam",
        "sources": "Sumber",
        "request_id": "Permintaan",
        "title": "Judul",
        "ksk_id": "KSK",
        "requested_on": "Tanggal permintaan",
        "reason": "Alasan",
        "rejected_by": "Ditolak oleh",
        "verification_handoff_id": "Serah terima verifikasi",
    }
)


def action_label(action: DeskAction, kind: str) -> str:
    """The button label of an action; a facilitator's household update is approved or rejected."""
    if kind == HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION:
        if action is DeskAction.RESOLVE:
            return "Setujui pembaruan"
        if action is DeskAction.REJECT:
            return "Tolak pembaruan"
    return ACTION_LABELS[action]
