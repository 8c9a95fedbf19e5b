"""The Glue table (Athena) against what a real `lumen serve` writes: its columns and types against the Parquet
schema of the files, its partition projection against the paths in the manifest."""

import re
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

import lumen_parquet
from hcl import Module, one

M = Module()
TABLE = M.resource("aws_glue_catalog_table", "spans")
PARAMS = TABLE["parameters"]


def glue_type(t: pa.DataType) -> str:
    """The Hive/Athena type that reads an Arrow type as Lumen writes it to Parquet."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_timestamp(t):
        assert t.tz == "UTC", t
        return "timestamp"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int64(t) or pa.types.is_uint32(t) or pa.types.is_uint64(t):
        return "bigint"  # uint32 does not fit int; uint64 values (byte counts) stay far below 2^63
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "int"
    if pa.types.is_list(t):
        return f"array<{glue_type(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{glue_type(t.key_type)},{glue_type(t.item_type)}>"
    raise AssertionError(f"no Glue type for {t}")


def written_schema(local_lumen):
    manifest = lumen_parquet.read_manifest(str(local_lumen.data_dir))
    schemas = {str(pq.read_schema(local_lumen.data_dir / f)) for f in list(manifest.files)[:5]}
    assert len(schemas) == 1
    return pq.read_schema(local_lumen.data_dir / next(iter(manifest.files)))


def test_columns_match_the_parquet_lumen_writes(local_lumen):
    schema = written_schema(local_lumen)
    columns = [(c["name"], c["type"]) for c in M.locals["glue_columns"]]
    assert columns == [(f.name, glue_type(f.type)) for f in schema]
    dynamic = one(TABLE["storage_descriptor"])["dynamic"]
    assert dynamic[0]["columns"]["for_each"] == "${local.glue_columns}"


def test_columns_are_the_span_contract_and_documented(local_lumen):
    import subprocess

    from lumen_env import LUMEN_BIN

    contract = subprocess.run([str(LUMEN_BIN), "schema"], capture_output=True, text=True, check=True).stdout
    names = re.findall(r"^\| `(\w+)` \|", contract, re.M)
    assert names == [c["name"] for c in M.locals["glue_columns"]]
    assert all(c["comment"] for c in M.locals["glue_columns"])
    assert not {"date", "hour"} & set(names), "partition keys must not collide with columns"


def projection_regex():
    template = PARAMS["storage.location.template"]
    prefix = "${local.spans_location}"
    assert template.startswith(prefix)
    rel = template[len(prefix):]
    assert PARAMS["projection.date.format"] == "yyyy-MM-dd"
    digits = int(PARAMS["projection.hour.digits"])
    pattern = re.escape(rel).replace(re.escape("$${date}"), r"(?P<date>\d{4}-\d{2}-\d{2})").replace(
        re.escape("$${hour}"), rf"(?P<hour>\d{{{digits}}})"
    )
    return re.compile("^spans/" + pattern + r"[^/]+\.parquet$")


def test_partition_projection_matches_the_files_in_the_manifest(local_lumen):
    assert M.locals["spans_location"].endswith("/spans/")
    assert PARAMS["projection.enabled"] == "true"
    assert PARAMS["projection.date.type"] == "date" and PARAMS["projection.hour.type"] == "integer"
    assert PARAMS["projection.hour.range"] == "0,23"
    assert PARAMS["projection.date.range"] == "${var.partition_projection_start_date},NOW"
    regex = projection_regex()
    manifest = lumen_parquet.read_manifest(str(local_lumen.data_dir))
    assert len(manifest.files) >= 24 * 7, "a week of hourly partitions"
    for f in manifest.files.values():
        m = regex.match(f.path)
        assert m, f"{f.path} does not fit the projection template"
        # Every row of the file lies in the partition its path names (UTC).
        for ns in (f.min_time_ns, f.max_time_ns):
            t = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
            assert (t.strftime("%Y-%m-%d"), t.hour) == (m["date"], int(m["hour"])), f.path


def test_partition_keys_are_typed_for_the_projection():
    keys = {k["name"]: k["type"] for k in TABLE["partition_keys"]}
    assert keys == {"date": "string", "hour": "int"}
    sd = one(TABLE["storage_descriptor"])
    assert sd["input_format"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert one(sd["ser_de_info"])["serialization_library"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
