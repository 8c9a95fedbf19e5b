"""The peer side of lumen-bench: DuckDB on the same machine, in the same run, on the same data.

usage: duckdb_peer.py convert NDJSON OUT.parquet          -> {"seconds": s, "bytes": n}
       duckdb_peer.py queries PARQUET_GLOB RUNS Q1 Q2 ... -> {"cold": [...], "hot": [[...], ...], "rows": [...]}
"""

import json
import os
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


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "convert":
        print(json.dumps(convert(sys.argv[2], sys.argv[3])))
    elif mode == "queries":
        print(json.dumps(queries(sys.argv[2], int(sys.argv[3]), sys.argv[4:])))
    else:
        sys.exit(f"unknown mode {mode}")
