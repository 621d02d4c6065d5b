"""Word lists for synthetic people and addresses in Jawa Timur (Javanese and Madurese usage)."""

from __future__ import annotations

import random

__all__ = ["address", "person_name"]


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    # Long word lists read better as running text than as one quoted item per line.
    return tuple(text.split(sep))


MALE_GIVEN: tuple[str, ...] = _words(
    "Agus Ahmad Arif Bambang Budi Dedi Dwi Eko Fajar Hadi Hari Hendra Heru Imam Iwan Joko "
    "Kusnadi Moch Muhammad Mulyono Nur Priyo Rahmat Rudi Santoso Slamet Sugeng Suharto "
    "Sukardi Sumarno Supriyadi Suparman Sutrisno Teguh Totok Wahyu Warsito Yanto Yusuf "
    "Zainal Abdul Achmad Bagus Dimas Gilang Ilham Irfan Rizky Wahyudi Ainur Fathur Hasan "
    "Holili Matsari Musleh Sahrul Subairi Syamsul Suhartono Puguh Gatot Bayu Aditya Andi "
    "Anang Darmaji"
)
FEMALE_GIVEN: tuple[str, ...] = _words(
    "Siti Sri Dewi Endang Ani Sumiati Suwarni Sulastri Tutik Wahyuni Yuliani Lestari Rina "
    "Kartini Ninik Nur Lilik Umi Anik Rukmini Rohmah Fatimah Aminah Khotijah Mariyam "
    "Muntamah Sunarti Sumini Supiyah Painem Tumini Sarmini Warsini Indah Ayu Dian Fitri "
    "Intan Putri Nabila Aisyah Zahra Nadia Salsabila Anisa Ratna Yayuk Mislah Saniyah "
    "Halimah Rohimah Musriyah Sukarti Jumiati Kasiyati Partini"
)
SECOND: tuple[str, ...] = _words(
    "Santoso Wibowo Susanto Prasetyo Hidayat Setiawan Purnomo Rahayu Wulandari Handayani "
    "Kurniawan Saputra Pratama Nugroho Hartono Sulistyo Utomo Wijaya Firmansyah Maulana "
    "Ramadhan Hakim Anwar Mansur Hasyim Efendi Basuki Suryani Ningsih Astuti Lestari "
    "Fauzi Rosyid Syaifuddin Ashari Kholiq Rohman Subekti Sumarsono Rahmawati"
)
STREETS: tuple[str, ...] = _words(
    "Mawar|Melati|Kenanga|Anggrek|Flamboyan|Diponegoro|Sudirman|Pahlawan|Merdeka|"
    "Gajah Mada|Hayam Wuruk|Kartini|Brawijaya|Veteran|Pemuda|Raya|Masjid|Pasar|Sekolahan|"
    "Kauman|Dahlia|Cempaka|Nangka|Sawo|Mangga|Rambutan|Tembakau|Kali|Irigasi",
    "|",
)
DUSUN: tuple[str, ...] = _words(
    "Krajan Kidul Lor Wetan Kulon Tengah Sumber Sidomulyo Sukorejo Karanganyar Ngemplak "
    "Pucung Jati Duwet Bendo Klampok Sambirejo Gempol Tegalsari Banyuurip Mojo Candi "
    "Ngasem Plosorejo Dukuh"
)


def person_name(r: random.Random, female: bool) -> str:
    """A plausible full name: one given name, often followed by a second name."""
    pool = FEMALE_GIVEN if female else MALE_GIVEN
    given = pool[int(r.random() * len(pool))]
    if r.random() < 0.35:
        return given
    second = SECOND[int(r.random() * len(SECOND))]
    return given if second == given else f"{given} {second}"


def address(r: random.Random, urban: bool) -> str:
    """An address line: a street with number in a kelurahan, a dusun in a desa, plus RT/RW."""
    rand = r.random
    rt, rw = 1 + int(rand() * 15), 1 + int(rand() * 8)
    if urban:
        street = STREETS[int(rand() * len(STREETS))]
        return f"Jl. {street} No. {1 + int(rand() * 150)}, RT {rt:03d}/RW {rw:03d}"
    return f"Dusun {DUSUN[int(rand() * len(DUSUN))]}, RT {rt:03d}/RW {rw:03d}"
