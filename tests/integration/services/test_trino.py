"""The test Trino really runs Iceberg tables on a PostgreSQL JDBC catalog and reads bronze
Parquet through the Hive connector, the way the cluster warehouse does."""

from __future__ import annotations

import decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trino

from tests.services.procs import TrinoServer

pytestmark = pytest.mark.integration


def test_iceberg_and_bronze_catalogs(trino_server: TrinoServer) -> None:
    part = trino_server.lake_root / "bronze/customers/ingest_date=2025-01-01"
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

    q("create schema if not exists bronze.bronze with (location = 'local:///bronze')")
    q(
        "create table bronze.bronze.customers (customer_id varchar, credit_limit_vnd decimal(18,0),"
        " ingest_date varchar) with (external_location = 'local:///bronze/customers',"
        " format = 'PARQUET', partitioned_by = ARRAY['ingest_date'])"
    )
    q("call bronze.system.sync_partition_metadata('bronze', 'customers', 'FULL')")
    assert q("select sum(credit_limit_vnd), count(*) from bronze.bronze.customers") == [
        [decimal.Decimal(3000), 2]
    ]
    q("create schema if not exists lakehouse.gold")
    q("create or replace table lakehouse.gold.t as select customer_id from bronze.bronze.customers")
    q("create or replace table lakehouse.gold.t as select 'x' as customer_id")  # atomic replace
    assert q("select customer_id from lakehouse.gold.t") == [["x"]]
