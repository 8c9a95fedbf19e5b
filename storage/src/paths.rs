//! Typed object-store paths. Every key Lumen writes is built (and parsed) here, nowhere else.
//!
//! - data: `spans/date=YYYY-MM-DD/hour=HH/<uuid v7>.parquet` (hive layout, partitioned by start_time UTC)
//! - manifest deltas: `_lumen/manifest/<seq:020>.json`
//! - manifest checkpoints: `_lumen/manifest/checkpoint-<seq:020>.json`

use chrono::{DateTime, Datelike, Timelike, Utc};
use object_store::path::Path;

pub const DATA_PREFIX: &str = "spans";
pub const MANIFEST_PREFIX: &str = "_lumen/manifest";

const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

/// The hour partition a start time (Unix ns) belongs to, as the hour's first nanosecond.
pub fn hour_bucket(start_ns: i64) -> i64 {
    start_ns.div_euclid(NANOS_PER_HOUR) * NANOS_PER_HOUR
}

/// A new, unique data file key in the partition of `hour_start_ns`.
pub fn data_file(hour_start_ns: i64) -> Path {
    let t: DateTime<Utc> = DateTime::from_timestamp_nanos(hour_start_ns);
    Path::from(format!(
        "{DATA_PREFIX}/date={:04}-{:02}-{:02}/hour={:02}/{}.parquet",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        uuid::Uuid::now_v7()
    ))
}

/// The partition (date, hour) of a data file key, if it is one.
pub fn parse_data_file(path: &str) -> Option<(String, u32)> {
    let mut parts = path.split('/');
    if parts.next()? != DATA_PREFIX {
        return None;
    }
    let date = parts.next()?.strip_prefix("date=")?.to_string();
    let hour = parts.next()?.strip_prefix("hour=")?.parse().ok()?;
    let file = parts.next()?;
    (file.ends_with(".parquet") && parts.next().is_none()).then_some((date, hour))
}

pub fn manifest_delta(seq: u64) -> Path {
    Path::from(format!("{MANIFEST_PREFIX}/{seq:020}.json"))
}

pub fn manifest_checkpoint(seq: u64) -> Path {
    Path::from(format!("{MANIFEST_PREFIX}/checkpoint-{seq:020}.json"))
}

/// What a key under the manifest prefix is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKey {
    Delta(u64),
    Checkpoint(u64),
}

pub fn parse_manifest_key(path: &Path) -> Option<ManifestKey> {
    let name = path.filename()?;
    let stem = name.strip_suffix(".json")?;
    if let Some(seq) = stem.strip_prefix("checkpoint-") {
        return seq.parse().ok().map(ManifestKey::Checkpoint);
    }
    stem.parse().ok().map(ManifestKey::Delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_paths_round_trip() {
        let t = DateTime::parse_from_rfc3339("2026-11-28T08:59:59.999Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        let hour = hour_bucket(t);
        let p = data_file(hour);
        assert!(
            p.as_ref().starts_with("spans/date=2026-11-28/hour=08/"),
            "{p}"
        );
        assert_eq!(
            parse_data_file(p.as_ref()),
            Some(("2026-11-28".to_string(), 8))
        );
        assert_eq!(parse_data_file("spans/x.parquet"), None);
        // Before 1970 the bucket still floors.
        assert_eq!(hour_bucket(-1), -NANOS_PER_HOUR);
    }

    #[test]
    fn manifest_keys_round_trip() {
        assert_eq!(
            parse_manifest_key(&manifest_delta(42)),
            Some(ManifestKey::Delta(42))
        );
        assert_eq!(
            parse_manifest_key(&manifest_checkpoint(7)),
            Some(ManifestKey::Checkpoint(7))
        );
        assert_eq!(
            parse_manifest_key(&Path::from("_lumen/manifest/junk.txt")),
            None
        );
    }
}
