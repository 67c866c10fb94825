"""Master data of Nông Phát, an agricultural-inputs trader in Buôn Ma Thuột (Đắk Lắk).

Customers are farmers (segment ``retail``), second-tier village agents (``wholesale``) and
plantations, cooperatives and coffee companies (``enterprise``), each with a payment habit
that the book follows. Suppliers are fertiliser plants and importers, pesticide and seed
houses, packaging and irrigation suppliers and two hauliers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smepulse.synth.highlands.calendar import ascii_upper
from smepulse.synth.highlands.names import (
    DISTRICTS,
    ENTERPRISE_KINDS,
    ESTATES,
    GIVEN_F,
    GIVEN_M,
    person_name,
)
from smepulse.synth.util import Rng, business_seconds, local_us, round_to

CATEGORIES = ("Phân bón", "Thuốc BVTV", "Giống cây trồng", "Vật tư thu hoạch", "Tưới tiêu")
FERTILISER, PESTICIDE, SEED, HARVEST, IRRIGATION = range(5)
RETAIL, WHOLESALE, ENTERPRISE = range(3)  # the contract's SEGMENTS order
#: Payment habits of customers (see docs/second-business.md).
HABITS = ("cash", "harvest", "early", "on_time", "late", "partial", "defaulter")
CASH, HARVEST_PAY, EARLY, ON_TIME, LATE, PARTIAL, DEFAULTER = range(len(HABITS))
OWN_NAME = "Công ty TNHH Vật tư Nông nghiệp Nông Phát"
#: The business is simulated from a year before the history, so that the history opens with
#: a realistic book (crop credit of the last season still open) instead of an empty one.
BURN_IN_DAYS = 365

#: (bank, masked account number) of the company's accounts: operating and loan account,
#: customer-receipts account, payroll account.
BANK_ACCOUNTS = (
    ("Agribank - CN Đắk Lắk", "****4417"),
    ("Vietcombank - CN Buôn Ma Thuột", "****0862"),
    ("BIDV - CN Đắk Lắk", "****3395"),
)
AGRIBANK, VCB, BIDV = range(3)

#: (name, province, category or -1 for hauliers, terms days, share within category).
SUPPLIERS: tuple[tuple[str, str, int, int, float], ...] = (
    ("Công ty CP Phân bón Cao Nguyên Xanh", "66", FERTILISER, 45, 3.0),
    ("Công ty CP Phân bón Miền Đông", "75", FERTILISER, 60, 2.5),
    ("Tổng công ty Phân đạm Mũi Cà Mau (đại lý khu vực)", "96", FERTILISER, 30, 2.0),
    ("Công ty TNHH Nhập khẩu Phân bón Sài Gòn Agro", "79", FERTILISER, 30, 1.5),
    ("Công ty CP Kali và Lân Việt Tây", "79", FERTILISER, 45, 1.0),
    ("Công ty TNHH Phân hữu cơ Ea Tam", "66", FERTILISER, 15, 0.6),
    ("Công ty CP Bảo vệ Thực vật Sông Bé", "79", PESTICIDE, 60, 2.0),
    ("Công ty TNHH Nông dược Phương Nam", "79", PESTICIDE, 60, 1.5),
    ("Công ty TNHH Hóa nông Tây Nguyên", "66", PESTICIDE, 30, 1.0),
    ("Công ty CP Giống cây trồng Cao Nguyên", "66", SEED, 30, 2.0),
    ("Vườn ươm Sầu riêng Krông Pắc", "66", SEED, 7, 1.0),
    ("Công ty TNHH Bao bì Nhựa Đông Á", "79", HARVEST, 30, 2.0),
    ("Cơ sở Bạt lưới Thành Công", "66", HARVEST, 15, 1.0),
    ("Công ty CP Ống nhựa và Máy bơm Miền Trung", "48", IRRIGATION, 30, 1.0),
    ("Công ty TNHH Vận tải Hàng hóa Ban Mê", "66", -1, 15, 2.0),
    ("Hợp tác xã Vận tải Tây Nguyên", "52", -1, 15, 1.0),
)
#: (product type, category, unit price VND 2024, price spread, bag size note).
_PRODUCT_TYPES: tuple[tuple[str, int, int], ...] = (
    ("Phân Urê hạt đục bao 50kg", FERTILISER, 590_000),
    ("Phân DAP 64% bao 50kg", FERTILISER, 1_050_000),
    ("Phân Kali clorua (MOP) bao 50kg", FERTILISER, 470_000),
    ("NPK 16-16-8+TE bao 50kg", FERTILISER, 760_000),
    ("NPK 20-20-15 bao 50kg", FERTILISER, 880_000),
    ("NPK 16-8-16 chuyên cà phê bao 50kg", FERTILISER, 820_000),
    ("NPK 15-5-20 chuyên tiêu bao 50kg", FERTILISER, 840_000),
    ("Phân SA bao 50kg", FERTILISER, 280_000),
    ("Lân nung chảy bao 50kg", FERTILISER, 230_000),
    ("Phân hữu cơ vi sinh bao 50kg", FERTILISER, 210_000),
    ("Vôi bột nông nghiệp bao 50kg", FERTILISER, 70_000),
    ("Phân bón lá chai 1L", FERTILISER, 150_000),
    ("Thuốc trừ sâu Abamectin 3.6EC chai 480ml", PESTICIDE, 165_000),
    ("Thuốc trừ sâu Emamectin 5WG gói 100g", PESTICIDE, 95_000),
    ("Thuốc trừ rệp Imidacloprid 10WP gói 100g", PESTICIDE, 60_000),
    ("Thuốc trừ bệnh Hexaconazole 5SC chai 1L", PESTICIDE, 210_000),
    ("Thuốc trừ nấm Mancozeb 80WP gói 1kg", PESTICIDE, 180_000),
    ("Thuốc trừ nấm Đồng Oxyclorua 30WP gói 1kg", PESTICIDE, 160_000),
    ("Thuốc trừ cỏ Glufosinate 15SL chai 1L", PESTICIDE, 230_000),
    ("Ngô lai bao 10kg", SEED, 1_450_000),
    ("Cây giống cà phê TR4 ghép", SEED, 9_000),
    ("Cây giống sầu riêng Ri6", SEED, 85_000),
    ("Hom tiêu Vĩnh Linh", SEED, 6_000),
    ("Bạt phơi cà phê 4x6m", HARVEST, 360_000),
    ("Lưới phơi nông sản cuộn 50m", HARVEST, 540_000),
    ("Bao PP đựng cà phê", HARVEST, 6_500),
    ("Ống tưới PE phi 60 cuộn 100m", IRRIGATION, 1_250_000),
    ("Máy bơm nước 3HP", IRRIGATION, 5_600_000),
    ("Béc tưới phun mưa", IRRIGATION, 45_000),
)
#: VAT before 1 July 2025: fertiliser and seeds outside VAT, pesticide 5 %, goods 8 %
#: (the reduced rate). From 1 July 2025 fertiliser carries 5 % (VAT law 48/2024/QH15).
VAT_BP = {FERTILISER: 0, PESTICIDE: 500, SEED: 0, HARVEST: 800, IRRIGATION: 800}
FERTILISER_VAT_BP_FROM_2025_07 = 500


@dataclass(frozen=True)
class Master:
    start_day: int  # the first day of the history written to bronze
    end_day: int
    customers: pd.DataFrame
    suppliers: pd.DataFrame
    products: pd.DataFrame
    staff: pd.DataFrame

    @property
    def sim_start_day(self) -> int:
        """Where the simulation starts (``BURN_IN_DAYS`` before the history)."""
        return self.start_day - BURN_IN_DAYS


def _tax_code(rng: Rng, province: str) -> str:
    prefix = {"66": "60", "52": "59", "68": "58", "79": "03", "75": "36", "96": "20"}.get(
        province, "04"
    )
    return prefix + "".join(str(d) for d in rng.integers(0, 10, size=8))


def _created(rng: Rng, n: int, start: int, end: int, new_share: float) -> np.ndarray:
    new = rng.random(n) < new_share
    day = np.where(
        new, rng.integers(start, end - 30, size=n), start - rng.integers(30, 2500, size=n)
    )
    return local_us(day, business_seconds(rng, n))


def make_customers(rng: Rng, scale: float, start: int, end: int) -> pd.DataFrame:
    counts = {
        RETAIL: max(24, round(330 * scale**0.7)),
        WHOLESALE: max(8, round(70 * scale**0.7)),
        ENTERPRISE: max(4, round(25 * scale**0.7)),
    }
    rows: list[dict[str, object]] = []
    used: set[str] = set()
    for segment, n in counts.items():
        for _ in range(n):
            district, province = DISTRICTS[rng.integers(len(DISTRICTS))]
            if segment == RETAIL:
                name = f"{person_name(rng, 0.18)} ({district})"
                habit = CASH if rng.random() < 0.55 else HARVEST_PAY
                if habit == HARVEST_PAY:
                    habit = rng.choice([HARVEST_PAY, PARTIAL, DEFAULTER], p=[0.70, 0.19, 0.11])
                terms = 0 if habit == CASH else int(rng.choice([150, 180]))
                credit = 0 if habit == CASH else int(rng.integers(2, 9)) * 10_000_000
                tax = None if rng.random() < 0.9 else _tax_code(rng, province)
            elif segment == WHOLESALE:
                kind = rng.choice(["Đại lý VTNN", "Cửa hàng Phân bón", "Đại lý"])
                name = f"{kind} {rng.choice(GIVEN_M + GIVEN_F)} - {district}"
                # A third of the agents sell to farmers on crop credit themselves and settle
                # with the trader from the harvest ("gối đầu" until the coffee is sold).
                habit = int(
                    rng.choice(
                        [EARLY, ON_TIME, LATE, PARTIAL, DEFAULTER, HARVEST_PAY],
                        p=[0.06, 0.32, 0.15, 0.10, 0.05, 0.32],
                    )
                )
                terms = int(rng.choice([30, 45, 60], p=[0.3, 0.4, 0.3]))
                if habit == HARVEST_PAY:
                    terms = int(rng.choice([90, 120]))
                credit = int(rng.integers(30, 200)) * 10_000_000
                tax = _tax_code(rng, province)
            else:
                kind = ENTERPRISE_KINDS[rng.integers(len(ENTERPRISE_KINDS))]
                name = f"{kind} {rng.choice(ESTATES)}"
                habit = int(rng.choice([EARLY, ON_TIME, LATE], p=[0.2, 0.65, 0.15]))
                terms = int(rng.choice([30, 45]))
                credit = int(rng.integers(10, 50)) * 100_000_000
                tax = _tax_code(rng, province)
            while name in used:  # two shops of the same name get a branch number
                name = f"{name} {len(used) % 7 + 2}"
            used.add(name)
            rows.append(
                {
                    "name": name,
                    "tax_code": tax,
                    "province": province,
                    "segment": segment,
                    "credit": credit,
                    "terms": terms,
                    "habit": int(habit),
                }
            )
    c = pd.DataFrame(rows)
    n = len(c)
    c["created_us"] = _created(rng, n, start, end, 0.15)
    # Each customer's own timing: mean delay after the due date (days) and its spread.
    mean = np.select(
        [c["habit"] == EARLY, c["habit"] == ON_TIME, c["habit"] == LATE],
        [rng.uniform(-14, -4, n), rng.uniform(-2, 9, n), rng.uniform(20, 65, n)],
        rng.uniform(5, 25, n),
    )
    c["delay_mean"] = mean
    c["delay_sd"] = rng.uniform(1.0, 6.0, n)
    # Harvest payers sell their coffee at different times: days after 1 December.
    c["harvest_offset"] = rng.gamma(2.0, 18.0, n)
    # Defaulters stop paying from a day in the history (a failed crop, a price crash).
    c["default_day"] = np.where(
        c["habit"] == DEFAULTER, rng.integers(start + 60, max(start + 61, end - 30), n), -1
    )
    c["activity"] = rng.lognormal(0.0, 0.8, n)
    c["bank_name"] = [ascii_upper(x) for x in c["name"]]
    return c


def make_suppliers(rng: Rng, start: int) -> pd.DataFrame:
    s = pd.DataFrame(SUPPLIERS, columns=["name", "province", "category", "terms", "share"])
    s["tax_code"] = [_tax_code(rng, p) for p in s["province"]]
    s["created_us"] = local_us(
        start - rng.integers(200, 3000, len(s)), business_seconds(rng, len(s))
    )
    s["bank_name"] = [ascii_upper(x) for x in s["name"]]
    return s


def make_products(rng: Rng, start: int) -> pd.DataFrame:
    rows = []
    brands = ("Cao Nguyên Xanh", "Miền Đông", "Việt Tây", "Ea Tam")
    for name, category, list_price in _PRODUCT_TYPES:
        n_brands = 3 if category == FERTILISER and "bao 50kg" in name else 1
        for b in range(n_brands):
            label = f"{name} - {brands[b]}" if n_brands > 1 else name
            unit = int(round_to(np.array([list_price * rng.uniform(0.93, 1.08)]), 1000)[0])
            margin = rng.uniform(0.05, 0.10) if category == FERTILISER else rng.uniform(0.12, 0.3)
            rows.append(
                {
                    "name": label,
                    "category": category,
                    "price": unit,
                    "cost": int(round(unit * (1 - margin), -2)),
                    "popularity": rng.lognormal(0, 0.6),
                }
            )
    p = pd.DataFrame(rows)
    p["sku"] = [f"NP-{'FPSHI'[c]}{i:04d}" for i, c in enumerate(p["category"], start=1)]
    p["updated_us"] = local_us(
        np.full(len(p), start - 400, dtype=np.int64), np.full(len(p), 8 * 3600, dtype=np.int64)
    )
    return p


def make_staff(rng: Rng, scale: float) -> pd.DataFrame:
    roles = (
        ("Giám đốc", 1, 35_000_000),
        ("Kế toán", 2, 12_000_000),
        ("Thủ quỹ", 1, 9_500_000),
        ("Nhân viên kinh doanh", max(2, round(7 * scale**0.4)), 9_000_000),
        ("Thủ kho", 2, 9_000_000),
        ("Lái xe", max(2, round(5 * scale**0.4)), 9_500_000),
        ("Bốc xếp", max(3, round(10 * scale**0.4)), 7_500_000),
        ("Bán hàng cửa hàng", max(2, round(3 * scale**0.4)), 7_000_000),
    )
    rows = []
    used: set[str] = set()
    for role, n, base in roles:
        for _ in range(n):
            name = person_name(rng)
            while name in used:  # one transfer name per employee (the bank shows only names)
                name = person_name(rng)
            used.add(name)
            rows.append(
                {
                    "name": name,
                    "bank_name": ascii_upper(name),
                    "role": role,
                    "salary": int(round(base * rng.uniform(0.9, 1.25), -5)),
                    "is_sales": role == "Nhân viên kinh doanh",
                }
            )
    return pd.DataFrame(rows)


def make_master(rng: Rng, scale: float, start: int, end: int) -> Master:
    sim = start - BURN_IN_DAYS
    return Master(
        start,
        end,
        make_customers(rng, scale, sim, end),
        make_suppliers(rng, sim),
        make_products(rng, start),
        make_staff(rng, scale),
    )
