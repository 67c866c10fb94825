"""The test Trino really runs Iceberg tables on a PostgreSQL JDBC catalog and reads bronze
Parquet through the Hive connector, the way the cluster warehouse does."""

from __future__ import annotations

import decimal
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trino

from tests.services.procs import TrinoServer

pytestmark = pytest.mark.integration


def test_iceberg_and_bronze_catalogs(trino_server: TrinoServer) -> None:
    # The Trino server is shared by the session (dbt builds there too): own names only.
    ns = f"probe_{uuid.uuid4().hex[:8]}"
    part = trino_server.lake_root / f"{ns}/customers/ingest_date=2025-01-01"
    part.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "customer_id": ["C1", "C2"],
                "credit_limit_vnd": pa.array([1000, 2000], pa.decimal128(18, 0)),
            }
        ),
        part / "part-00000.parquet",
    )
    con = trino.dbapi.connect(host=trino_server.host, port=trino_server.port, user="test")
    cur = con.cursor()

    def q(sql: str) -> list[list[object]]:
        cur.execute(sql)
        rows: list[list[object]] = cur.fetchall()
        return rows

    q(f"create schema bronze.{ns} with (location = 'local:///{ns}')")
    q(
        f"create table bronze.{ns}.customers (customer_id varchar,"
        " credit_limit_vnd decimal(18,0), ingest_date varchar)"
        f" with (external_location = 'local:///{ns}/customers',"
        " format = 'PARQUET', partitioned_by = ARRAY['ingest_date'])"
    )
    q(f"call bronze.system.sync_partition_metadata('{ns}', 'customers', 'FULL')")
    assert q(f"select sum(credit_limit_vnd), count(*) from bronze.{ns}.customers") == [
        [decimal.Decimal(3000), 2]
    ]
    q(f"create schema lakehouse.{ns}")
    q(f"create or replace table lakehouse.{ns}.t as select customer_id from bronze.{ns}.customers")
    q(f"create or replace table lakehouse.{ns}.t as select 'x' as customer_id")  # atomic replace
    assert q(f"select customer_id from lakehouse.{ns}.t") == [["x"]]
