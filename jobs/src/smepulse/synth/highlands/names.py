"""Names of people, villages and companies of the Central Highlands (invented; any likeness
to a real business is chance)."""

from __future__ import annotations

from smepulse.synth.util import Rng

FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
]
MIDDLE_M, MIDDLE_F = ("Văn", "Đức", "Hữu", "Minh", "Quang", "Công"), ("Thị", "Ngọc", "Thu")
GIVEN_M = [
    "Hùng",
    "Dũng",
    "Tuấn",
    "Thắng",
    "Phúc",
    "Lộc",
    "Tài",
    "Sơn",
    "Hải",
    "Bình",
    "Toàn",
    "Khánh",
    "Long",
    "Nam",
    "Trung",
    "Vinh",
]
GIVEN_F = [
    "Lan",
    "Hoa",
    "Hương",
    "Mai",
    "Hạnh",
    "Trang",
    "Thảo",
    "Nga",
    "Yến",
    "Loan",
    "Phượng",
    "Dung",
    "Hằng",
    "Liên",
]
# Ê Đê and Gia Rai farmers: men's names start with "Y", women's with "H'".
EDE_GIVEN = ["Kông", "Bhăm", "Thuột", "Blin", "Jŏk", "Khuê", "Sới", "Lir", "Nhiê", "Wai"]
_EDEFAMILY = [
    "Niê",
    "Êban",
    "Mlô",
    "Ksor",
    "Byă",
    "Adrơng",
    "Buôn",
    "Yă",
    "Rơ",
    "Châm",
    "Siu",
    "Nay",
]
DISTRICTS = (
    ("Cư M'gar", "66"),
    ("Krông Pắc", "66"),
    ("Krông Năng", "66"),
    ("Ea H'leo", "66"),
    ("Buôn Hồ", "66"),
    ("Cư Kuin", "66"),
    ("Ea Kar", "66"),
    ("Krông Búk", "66"),
    ("Đắk Mil", "68"),
    ("Đắk Song", "68"),
    ("Di Linh", "68"),
    ("Chư Sê", "52"),
    ("Chư Prông", "52"),
    ("Ia Grai", "52"),
)
ESTATES = [
    "Ea Tiêu",
    "Phước An",
    "Hòa Thắng",
    "Ea Pốk",
    "Cuôr Đăng",
    "Ea Kmút",
    "Tân Lập",
    "Đạt Lý",
    "Ea Sar",
    "Thuận An",
]
ENTERPRISE_KINDS = (
    "Công ty TNHH MTV Cà phê",
    "Hợp tác xã Nông nghiệp",
    "Công ty CP Nông sản",
    "Công ty TNHH Hồ tiêu",
    "Công ty TNHH Sầu riêng",
)


def person_name(rng: Rng, ethnic_share: float = 0.0) -> str:
    """A Kinh name, or with ``ethnic_share`` an Ê Đê / Gia Rai one."""
    female = rng.random() < 0.4
    if rng.random() < ethnic_share:
        prefix = "H'" if female else "Y "
        return f"{prefix}{rng.choice(EDE_GIVEN)} {rng.choice(_EDEFAMILY)}"
    middle = rng.choice(MIDDLE_F if female else MIDDLE_M)
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    return f"{rng.choice(FAMILY)} {middle} {given}"
