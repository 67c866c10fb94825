"""Vietnamese names for synthetic people and businesses.

Names are drawn from word lists with a seeded generator; business names are made unique by
a numeric suffix (as real shops do: "Tạp hóa Minh Long 2"). Banks print counterparties in
upper case without diacritics, which :func:`bank_name` reproduces.
"""

from __future__ import annotations

import unicodedata

import numpy as np

from smepulse.synth.util import Rng

# Surname shares roughly as in Vietnam's population (Nguyễn alone is about 38 %).
_SURNAMES = {
    "Nguyễn": 38, "Trần": 11, "Lê": 9.5, "Phạm": 7, "Hoàng": 4, "Huỳnh": 3, "Phan": 4.5,
    "Vũ": 3.5, "Võ": 3.5, "Đặng": 2, "Bùi": 2, "Đỗ": 1.5, "Hồ": 1.3, "Ngô": 1.3,
    "Dương": 1, "Lý": 0.5,
}  # fmt: skip
_MIDDLE_M = ["Văn", "Minh", "Hữu", "Đức", "Quốc", "Thanh", "Hoàng", "Gia", "Công", "Xuân"]
_MIDDLE_F = ["Thị", "Ngọc", "Thu", "Kim", "Thanh", "Minh", "Bảo", "Hồng", "Mỹ", "Phương"]
_GIVEN_M = [
    "An", "Bình", "Cường", "Dũng", "Duy", "Hải", "Hiếu", "Hùng", "Huy", "Khánh", "Khoa",
    "Long", "Minh", "Nam", "Nghĩa", "Phong", "Phúc", "Quân", "Sơn", "Tài", "Thắng",
    "Thành", "Tiến", "Toàn", "Trung", "Tuấn", "Việt", "Vinh",
]  # fmt: skip
_GIVEN_F = [
    "Anh", "Châu", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hương",
    "Lan", "Linh", "Loan", "Mai", "My", "Nga", "Ngân", "Nhung", "Oanh", "Phương",
    "Quyên", "Tâm", "Thảo", "Trang", "Trinh", "Uyên", "Vy", "Yến",
]  # fmt: skip
# Auspicious Sino-Vietnamese words that make up most Vietnamese trade names.
_BRAND_WORDS = [
    "An", "Bình", "Phát", "Đạt", "Thịnh", "Hưng", "Thành", "Lộc", "Phúc", "Minh", "Long",
    "Khang", "Tài", "Nguyên", "Tân", "Việt", "Hòa", "Gia", "Kim", "Ngọc", "Hoàng", "Sao",
    "Mai", "Đông", "Nam", "Tiến", "Trường", "Hải", "Quang", "Thuận", "Vạn", "Phú",
]  # fmt: skip
_PREFIXES = {
    "retail": ["Tạp hóa", "Cửa hàng", "Siêu thị mini", "Quán", "Nhà hàng", "Cửa hàng tiện lợi"],
    "wholesale": ["Đại lý", "Nhà phân phối", "Công ty TNHH Thương mại", "Cửa hàng sỉ", "Đại lý cấp 1"],
    "enterprise": ["Công ty Cổ phần", "Công ty TNHH", "Chuỗi siêu thị", "Công ty CP Tập đoàn", "Công ty CP Bán lẻ"],
    "supplier": [
        "Công ty CP Sữa", "Công ty TNHH Thực phẩm", "Công ty CP Nước giải khát",
        "Công ty TNHH Hóa mỹ phẩm", "Công ty CP Bao bì", "Nhà máy Chế biến", "Công ty TNHH Bánh kẹo",
        "Công ty CP Dầu ăn", "Công ty TNHH Văn phòng phẩm", "Công ty CP Vận tải",
    ],
    "vendor": [
        "Công ty TNHH Dịch vụ", "Cửa hàng Điện máy", "Gara ô tô", "Công ty TNHH In ấn",
        "Cơ sở Sửa chữa", "Công ty TNHH Tư vấn", "Nhà sách", "Công ty TNHH Thiết bị",
    ],
}  # fmt: skip


def person_names(rng: Rng, n: int) -> list[str]:
    """``n`` full names (surname, middle, given), about half of them women."""
    surnames = list(_SURNAMES)
    p = np.array(list(_SURNAMES.values()), dtype=np.float64)
    s = rng.choice(len(surnames), size=n, p=p / p.sum())
    female = rng.random(n) < 0.5
    mid = rng.integers(0, 10, size=n)
    given_m = rng.integers(0, len(_GIVEN_M), size=n)
    given_f = rng.integers(0, len(_GIVEN_F), size=n)
    return [
        f"{surnames[s[i]]} {_MIDDLE_F[mid[i]]} {_GIVEN_F[given_f[i]]}"
        if female[i]
        else f"{surnames[s[i]]} {_MIDDLE_M[mid[i]]} {_GIVEN_M[given_m[i]]}"
        for i in range(n)
    ]


def brand_names(rng: Rng, n: int) -> list[str]:
    """Two-word trade names such as "Phát Đạt" or "Minh Long"."""
    a = rng.integers(0, len(_BRAND_WORDS), size=n)
    b = (a + rng.integers(1, len(_BRAND_WORDS), size=n)) % len(_BRAND_WORDS)  # never "An An"
    return [f"{_BRAND_WORDS[a[i]]} {_BRAND_WORDS[b[i]]}" for i in range(n)]


def business_names(rng: Rng, kind: str, n: int) -> list[str]:
    """Business names of one kind (a segment, "supplier" or "vendor")."""
    prefixes = _PREFIXES[kind]
    pre = rng.integers(0, len(prefixes), size=n)
    brands = brand_names(rng, n)
    # Small retail shops are often named after the owner's given name.
    owners = person_names(rng, n) if kind == "retail" else None
    out: list[str] = []
    for i in range(n):
        if owners is not None and pre[i] in (0, 3):
            out.append(f"{prefixes[pre[i]]} {owners[i].split(' ', 2)[-1]}")
        else:
            out.append(f"{prefixes[pre[i]]} {brands[i]}")
    return out


def make_unique(names: list[str]) -> list[str]:
    """Number repeated names in order of appearance: X, X 2, X 3, ..."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append(name if count == 1 else f"{name} {count}")
    return out


def bank_name(name: str) -> str:
    """How a Vietnamese bank statement prints a name: upper case, no diacritics."""
    plain = name.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", plain)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").upper()
