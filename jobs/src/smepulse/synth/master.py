"""Master data of the synthetic distributor: products, customers, suppliers, bank accounts and
employees (for payroll). Returned as pandas frames of plain numpy columns; the Arrow tables in
the contract's schema are assembled in :mod:`smepulse.synth.tables`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smepulse.bronze.contract import PROVINCE_CODES
from smepulse.synth.names import bank_name, business_names, make_unique, person_names
from smepulse.synth.util import DAY_S, US, Rng, business_seconds, local_us, round_to

SEGMENTS = ("retail", "wholesale", "enterprise")
PROFILES = ("prompt", "usually_late", "chronically_late", "defaulting")

# (category, item, price range in VND before VAT, VAT in basis points, sold by weight)
_ITEMS = [
    ("Đồ uống", "Nước suối thùng 24 chai 500ml", 85_000, 120_000, 800, False),
    ("Đồ uống", "Nước ngọt có ga thùng 24 lon", 180_000, 250_000, 800, False),
    ("Đồ uống", "Trà xanh đóng chai thùng 24", 170_000, 220_000, 800, False),
    ("Đồ uống", "Cà phê hòa tan hộp 20 gói", 48_000, 75_000, 800, False),
    ("Đồ uống", "Nước tăng lực thùng 24 lon", 230_000, 290_000, 800, False),
    ("Đồ uống có cồn", "Bia lon thùng 24", 300_000, 430_000, 1000, False),
    ("Đồ uống có cồn", "Rượu vang chai 750ml", 180_000, 650_000, 1000, False),
    ("Sữa", "Sữa tươi tiệt trùng thùng 48 hộp", 320_000, 390_000, 800, False),
    ("Sữa", "Sữa đặc có đường lon 380g", 21_000, 28_000, 800, False),
    ("Sữa", "Sữa chua uống thùng 48 chai", 260_000, 320_000, 800, False),
    ("Sữa", "Sữa bột lon 900g", 350_000, 560_000, 800, False),
    ("Thực phẩm khô", "Gạo thơm (kg)", 18_000, 32_000, 800, True),
    ("Thực phẩm khô", "Mì gói thùng 30 gói", 100_000, 135_000, 800, False),
    ("Thực phẩm khô", "Đường cát trắng (kg)", 20_000, 27_000, 800, True),
    ("Thực phẩm khô", "Bột mì gói 1kg", 20_000, 30_000, 800, False),
    ("Thực phẩm khô", "Dầu ăn can 5 lít", 180_000, 240_000, 800, False),
    ("Gia vị", "Nước mắm chai 500ml", 28_000, 75_000, 800, False),
    ("Gia vị", "Nước tương chai 500ml", 15_000, 26_000, 800, False),
    ("Gia vị", "Hạt nêm gói 400g", 33_000, 46_000, 800, False),
    ("Gia vị", "Bột ngọt gói 1kg", 55_000, 72_000, 800, False),
    ("Gia vị", "Tương ớt chai 250g", 11_000, 18_000, 800, False),
    ("Bánh kẹo", "Bánh quy hộp thiếc", 95_000, 160_000, 800, False),
    ("Bánh kẹo", "Kẹo dẻo túi 500g", 35_000, 60_000, 800, False),
    ("Hóa mỹ phẩm", "Bột giặt túi 3kg", 120_000, 165_000, 800, False),
    ("Hóa mỹ phẩm", "Nước rửa chén can 3.8kg", 78_000, 105_000, 800, False),
    ("Hóa mỹ phẩm", "Dầu gội chai 650g", 115_000, 175_000, 800, False),
    ("Hóa mỹ phẩm", "Kem đánh răng tuýp 180g", 24_000, 36_000, 800, False),
    ("Hóa mỹ phẩm", "Giấy vệ sinh lốc 10 cuộn", 58_000, 92_000, 800, False),
    ("Gia dụng", "Nồi cơm điện 1.8 lít", 450_000, 1_200_000, 1000, False),
    ("Gia dụng", "Quạt đứng", 380_000, 950_000, 1000, False),
    ("Văn phòng phẩm", "Giấy A4 ram 500 tờ", 62_000, 88_000, 800, False),
    ("Văn phòng phẩm", "Bút bi hộp 20 cây", 48_000, 72_000, 800, False),
]  # fmt: skip
_PRODUCT_BRANDS = [
    "Sài Gòn Xanh", "Hương Việt", "Phú Gia", "Đại Phát", "Minh An", "Hồng Hà", "Mê Kông",
    "Sông Hàn", "Trường An", "Bắc Việt", "Ngọc Lan", "Tân Tiến",
]  # fmt: skip

# Share of customers by province: the big cities dominate a distributor's book.
_PROVINCE_WEIGHTS = {
    "79": 30,
    "1": 22,
    "48": 6,
    "31": 5,
    "75": 5,
    "92": 4,
    "24": 3,
    "56": 2,
    "22": 2,
}


@dataclass(frozen=True)
class Master:
    """All master data of one generated company."""

    products: pd.DataFrame
    customers: pd.DataFrame
    customer_reviews: pd.DataFrame  # credit-limit reviews: customer, review_us, credit_limit
    suppliers: pd.DataFrame
    employees: pd.DataFrame
    start_day: int
    end_day: int


def _provinces(rng: Rng, n: int) -> np.ndarray:
    codes = list(PROVINCE_CODES)
    w = np.array(
        [_PROVINCE_WEIGHTS.get(c, 18 / (len(codes) - len(_PROVINCE_WEIGHTS))) for c in codes]
    )
    picked: np.ndarray = np.array(codes, dtype=object)[
        rng.choice(len(codes), size=n, p=w / w.sum())
    ]
    return picked


def _tax_codes(rng: Rng, n: int, first: int) -> np.ndarray:
    # Unique 10-digit codes: a random offset inside disjoint strides of the code space.
    stride = 1_000
    codes = first + np.arange(n, dtype=np.int64) * stride + rng.integers(0, stride, size=n)
    return np.char.zfill(codes.astype(str), 10).astype(object)


def make_products(rng: Rng, start_day: int) -> pd.DataFrame:
    rows = []
    for item_no, (category, item, lo, hi, vat_bp, by_weight) in enumerate(_ITEMS):
        n_brands = int(rng.integers(5, 11))
        for brand in rng.choice(len(_PRODUCT_BRANDS), size=n_brands, replace=False):
            price = int(round(rng.uniform(lo, hi) / 500) * 500)
            rows.append(
                (category, f"{item} {_PRODUCT_BRANDS[brand]}", item_no, price, vat_bp, by_weight)
            )
    df = pd.DataFrame(rows, columns=["category", "name", "item", "price", "vat_bp", "by_weight"])
    n = len(df)
    df["cost"] = round_to(df["price"].to_numpy() * rng.uniform(0.68, 0.86, size=n), 100)
    df["is_active"] = rng.random(n) >= 0.04  # discontinued products are never sold
    df["popularity"] = 1.0 / np.power(rng.permutation(n) + 1.0, 0.8)
    days = start_day - rng.integers(30, 400, size=n)
    df["updated_us"] = local_us(days, business_seconds(rng, n))
    df["sku"] = [f"SKU-{it:02d}{i:04d}" for i, it in enumerate(df["item"])]
    return df


def make_customers(
    rng: Rng, n: int, start_day: int, end_day: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    seg = rng.choice(3, size=n, p=[0.65, 0.27, 0.08])
    names = np.empty(n, dtype=object)
    for s, label in enumerate(SEGMENTS):
        mask = seg == s
        names[mask] = business_names(rng, label, int(mask.sum()))
    names = np.array(make_unique(list(names)), dtype=object)
    prof_p = np.array([[0.6, 0.25, 0.1, 0.05], [0.45, 0.33, 0.15, 0.07], [0.5, 0.35, 0.12, 0.03]])
    profile = (rng.random(n)[:, None] > np.cumsum(prof_p[seg], axis=1)).sum(axis=1)
    terms_choices = [
        ([0, 7, 15], [0.6, 0.25, 0.15]),
        ([15, 30], [0.5, 0.5]),
        ([30, 45, 60], [0.5, 0.3, 0.2]),
    ]
    terms = np.zeros(n, dtype=np.int64)
    credit = np.zeros(n, dtype=np.int64)
    weight = np.zeros(n)
    limits = [(10e6, 50e6, 5_000_000), (100e6, 500e6, 10_000_000), (500e6, 3e9, 50_000_000)]
    mean_weight = [1.0, 2.5, 4.0]
    for s in range(3):
        mask = seg == s
        k = int(mask.sum())
        options, p = terms_choices[s]
        terms[mask] = rng.choice(options, size=k, p=p)
        lo, hi, step = limits[s]
        credit[mask] = round_to(rng.uniform(lo, hi, size=k), step)
        weight[mask] = mean_weight[s] * rng.lognormal(-0.5, 1.0, size=k)
    # 60 % existed before the history starts; the rest join over time (part of the growth).
    history = end_day - start_day
    existing = rng.random(n) < 0.6
    created_day = np.where(
        existing,
        start_day - rng.integers(1, 4 * 365, size=n),
        start_day + (np.sqrt(rng.random(n)) * max(history - 14, 1)).astype(np.int64),
    )
    created_us = local_us(created_day, business_seconds(rng, n))
    # Defaulting customers pay as chronically late ones until a default day, then stop.
    default_day = np.where(
        profile == 3, start_day + (rng.uniform(0.3, 1.0, size=n) * history).astype(np.int64), -1
    )
    retail_walk_in = (seg == 0) & (rng.random(n) < 0.2)
    tax = _tax_codes(rng, n, 100_000_000)
    tax[retail_walk_in] = None
    customers = pd.DataFrame(
        {
            "name": names,
            "bank": [bank_name(x) for x in names],
            "tax_code": tax,
            "province": _provinces(rng, n),
            "segment": seg,
            "profile": profile,
            "terms": terms,
            "credit": credit,
            "created_us": created_us,
            "weight": weight,
            "default_day": default_day,
        }
    )
    # About 12 % of customers have their credit limit reviewed once during the history.
    reviewed = np.flatnonzero(rng.random(n) < 0.12)
    first = np.maximum(created_us[reviewed], local_us(np.array([start_day]), np.array([0]))[0])
    last = local_us(np.array([end_day]), np.array([DAY_S - 1]))[0]
    review_us = first + (rng.random(len(reviewed)) * (last - first)).astype(np.int64)
    review_us = review_us // (60 * US) * (60 * US)
    factor = np.where(profile[reviewed] == 3, 0.5, rng.choice([1.5, 2.0], size=len(reviewed)))
    reviews = pd.DataFrame(
        {
            "customer": reviewed,
            "review_us": review_us,
            "credit": round_to(credit[reviewed] * factor, 5_000_000),
        }
    )
    return customers, reviews[reviews["review_us"] > customers["created_us"].to_numpy()[reviewed]]


def make_suppliers(rng: Rng, n: int, start_day: int) -> pd.DataFrame:
    names = np.array(make_unique(business_names(rng, "supplier", n)), dtype=object)
    created_day = start_day - rng.integers(400, 6 * 365, size=n)
    created_us = local_us(created_day, business_seconds(rng, n))
    updated_us = created_us + rng.integers(0, 300, size=n) * DAY_S * US
    return pd.DataFrame(
        {
            "name": names,
            "bank": [bank_name(x) for x in names],
            "tax_code": _tax_codes(rng, n, 300_000_000),
            "province": _provinces(rng, n),
            "terms": rng.choice([15, 30, 45, 60], size=n, p=[0.2, 0.45, 0.2, 0.15]),
            "created_us": created_us,
            "updated_us": updated_us,
            "size": rng.lognormal(0.0, 0.9, size=n),
        }
    )


def make_employees(rng: Rng, n: int, start_day: int, end_day: int) -> pd.DataFrame:
    names = make_unique(person_names(rng, n))
    hired_before = rng.random(n) < 0.7
    hire_day = np.where(
        hired_before,
        start_day - rng.integers(30, 2000, size=n),
        start_day + rng.integers(0, max(end_day - start_day, 1), size=n),
    )
    return pd.DataFrame(
        {
            "bank": [bank_name(x) for x in names],
            "hire_day": hire_day,
            "salary": round_to(rng.lognormal(np.log(11e6), 0.35, size=n), 1000),
        }
    )


def make_master(rng: Rng, scale: float, start_day: int, end_day: int) -> Master:
    """All master data; volumes grow with ``scale`` (products stay one catalogue)."""
    # Products first: the catalogue is the same whatever the scale.
    products = make_products(rng, start_day)
    customers, reviews = make_customers(rng, max(20, round(1200 * scale)), start_day, end_day)
    return Master(
        products=products,
        customers=customers,
        customer_reviews=reviews.reset_index(drop=True),
        suppliers=make_suppliers(rng, max(8, round(60 * scale)), start_day),
        employees=make_employees(rng, max(5, round(30 * scale)), start_day, end_day),
        start_day=start_day,
        end_day=end_day,
    )
