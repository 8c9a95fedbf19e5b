"""The peer side of lumen-bench: DuckDB (and chDB, ClickHouse's embedded engine) on the same machine, in the
same run, on the same data.

usage: duckdb_peer.py convert NDJSON OUT.parquet               -> {"seconds": s, "bytes": n}
       duckdb_peer.py queries PARQUET_GLOB RUNS Q1 Q2 ...      -> {"cold": [...], "hot": [[...], ...], "rows": [...]}
       duckdb_peer.py chdb-queries PARQUET_GLOB RUNS Q1 Q2 ... -> the same from chDB, or {"missing": why}
"""

import json
import os
import re
import sys
import time

import duckdb


def convert(ndjson, out):
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM read_json('{ndjson}', format = 'newline_delimited', maximum_object_size = 100000000)) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": os.path.getsize(out)}


def queries(glob, runs, sqls):
    result = {"cold": [], "hot": [], "rows": []}
    for sql in sqls:
        # Cold: a fresh connection (no cached metadata) for the first run.
        con = duckdb.connect()
        con.execute(f"CREATE VIEW spans AS SELECT * FROM read_parquet('{glob}')")
        started = time.perf_counter()
        rows = con.execute(sql).fetchall()
        result["cold"].append(time.perf_counter() - started)
        result["rows"].append(len(rows))
        hot = []
        for _ in range(runs):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            hot.append(time.perf_counter() - started)
        result["hot"].append(hot)
    return result


def clickhouse_sql(sql):
    """The suite's SQL in ClickHouse's dialect: the same answers, spelled its way."""
    # quantile_cont interpolates linearly between the two nearest values, as quantileExactInclusive does.
    sql = re.sub(r"quantile_cont\((\w+), ([0-9.]+)\)", r"quantileExactInclusive(\2)(\1)", sql)
    # An RFC 3339 literal compared with a DateTime64 column.
    return re.sub(r"'(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)Z'", r"toDateTime64('\1 \2', 9, 'UTC')", sql)


def chdb_queries(glob, runs, sqls):
    try:
        from chdb import session
    except ImportError as e:
        return {"missing": f"chdb is not installed ({e})"}
    # ClickHouse's file() globs have no `**`: Lumen's layout is spans/date=…/hour=…/<id>.parquet.
    glob = glob.replace("/**/", "/*/*/")
    result = {"cold": [], "hot": [], "rows": []}
    for sql in sqls:
        sql = clickhouse_sql(sql)
        con = session.Session()
        con.query(f"CREATE VIEW spans AS SELECT * FROM file('{glob}', Parquet)")
        started = time.perf_counter()
        rows = con.query(sql, "JSONCompact")
        result["cold"].append(time.perf_counter() - started)
        result["rows"].append(json.loads(str(rows) or "{}").get("rows", 0))
        hot = []
        for _ in range(runs):
            started = time.perf_counter()
            con.query(sql, "JSONCompact")
            hot.append(time.perf_counter() - started)
        result["hot"].append(hot)
        con.close()
    return result


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "convert":
        print(json.dumps(convert(sys.argv[2], sys.argv[3])))
    elif mode == "queries":
        print(json.dumps(queries(sys.argv[2], int(sys.argv[3]), sys.argv[4:])))
    elif mode == "chdb-queries":
        print(json.dumps(chdb_queries(sys.argv[2], int(sys.argv[3]), sys.argv[4:])))
    else:
        sys.exit(f"unknown mode {mode}")
