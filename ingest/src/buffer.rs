//! The hot buffer: accepted, durable spans not yet in Parquet, kept as Arrow batches in WAL order so the
//! query path can read them the moment their request is acknowledged. It also remembers recent span ids so
//! that a client retrying a request whose answer it never saw does not create duplicates.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;

use crate::schema::names;

/// One acknowledged request's spans and its WAL sequence number.
#[derive(Debug, Clone)]
pub struct HotBatch {
    pub seq: u64,
    pub batch: RecordBatch,
    pub bytes: usize,
    pub arrived: Instant,
}

/// What a flush takes: every batch through `through_seq`.
#[derive(Debug, Clone)]
pub struct FlushSet {
    pub through_seq: u64,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
}

#[derive(Default)]
struct Inner {
    batches: VecDeque<HotBatch>,
    bytes: usize,
    /// Hashes of the span ids in `batches`.
    hot_ids: HashSet<u64>,
    /// Hashes of span ids flushed recently, oldest first, bounded by `recent_capacity`.
    recent_order: VecDeque<u64>,
    recent_ids: HashSet<u64>,
    /// Batches a pending merge will rewrite (sequence → holders): a flush stops before the first.
    pins: BTreeMap<u64, usize>,
    /// The last sequence handed to a flush that has not completed yet.
    flushing_through: Option<u64>,
}

pub struct HotBuffer {
    inner: Mutex<Inner>,
    recent_capacity: usize,
}

/// A span id as remembered for de-duplication (a 64-bit hash: a collision among a million ids has a
/// probability around 1e-8, and would only drop a retried span as a duplicate).
pub fn id_hash(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// The span id column of a batch in the span schema.
pub fn span_ids(batch: &RecordBatch) -> Option<&arrow::array::StringArray> {
    batch.column_by_name(names::SPAN_ID)?.as_string_opt::<i32>()
}

impl HotBuffer {
    /// `recent_capacity`: how many flushed span ids are still remembered for de-duplication.
    pub fn new(recent_capacity: usize) -> Self {
        HotBuffer {
            inner: Mutex::new(Inner::default()),
            recent_capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in a way that matters more
        // than losing the server, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For each row of `ids`: true if that span id was already accepted (or repeats earlier in `ids`).
    pub fn duplicates(
        &self,
        ids: &arrow::array::StringArray,
        also_taken: &HashSet<u64>,
    ) -> Vec<bool> {
        let inner = self.lock();
        let mut seen_here = HashSet::new();
        (0..ids.len())
            .map(|i| {
                let h = id_hash(ids.value(i));
                inner.hot_ids.contains(&h)
                    || inner.recent_ids.contains(&h)
                    || also_taken.contains(&h)
                    || !seen_here.insert(h)
            })
            .collect()
    }

    /// Adds a durable batch. Called in WAL order by the single WAL writer.
    pub fn push(&self, seq: u64, batch: RecordBatch) {
        let bytes = batch.get_array_memory_size();
        let mut inner = self.lock();
        if let Some(ids) = span_ids(&batch) {
            for i in 0..ids.len() {
                inner.hot_ids.insert(id_hash(ids.value(i)));
            }
        }
        inner.bytes += bytes;
        inner.batches.push_back(HotBatch {
            seq,
            batch,
            bytes,
            arrived: Instant::now(),
        });
    }

    /// All batches, oldest first (cheap: batches are reference counted).
    pub fn snapshot(&self) -> Vec<HotBatch> {
        self.lock().batches.iter().cloned().collect()
    }

    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    pub fn rows(&self) -> usize {
        self.lock().batches.iter().map(|b| b.batch.num_rows()).sum()
    }

    /// Age of the oldest batch not yet flushed.
    pub fn oldest_age(&self) -> Option<Duration> {
        self.lock().batches.front().map(|b| b.arrived.elapsed())
    }

    /// Everything currently buffered, for a flush, up to (not including) the first pinned batch. The
    /// batches stay visible until `complete_flush`.
    pub fn flush_set(&self) -> Option<FlushSet> {
        let mut inner = self.lock();
        let mut through_seq = inner.batches.back()?.seq;
        if let Some((&pinned, _)) = inner.pins.iter().next() {
            through_seq = through_seq.min(pinned.checked_sub(1)?);
        }
        let batches: Vec<RecordBatch> = inner
            .batches
            .iter()
            .take_while(|b| b.seq <= through_seq)
            .map(|b| b.batch.clone())
            .collect();
        if batches.is_empty() {
            return None;
        }
        inner.flushing_through = Some(through_seq);
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        Some(FlushSet {
            through_seq,
            batches,
            rows,
        })
    }

    /// Drops the batches through `through_seq` (they are in Parquet and in the manifest now); their span
    /// ids move to the bounded set of recently flushed ids.
    pub fn complete_flush(&self, through_seq: u64) {
        let mut inner = self.lock();
        inner.flushing_through = None;
        while inner.batches.front().is_some_and(|b| b.seq <= through_seq) {
            let Some(done) = inner.batches.pop_front() else {
                break;
            };
            inner.bytes -= done.bytes;
            if let Some(ids) = span_ids(&done.batch) {
                for i in 0..ids.len() {
                    let h = id_hash(ids.value(i));
                    inner.hot_ids.remove(&h);
                    if inner.recent_ids.insert(h) {
                        inner.recent_order.push_back(h);
                    }
                }
            }
        }
        while inner.recent_order.len() > self.recent_capacity {
            if let Some(old) = inner.recent_order.pop_front() {
                inner.recent_ids.remove(&old);
            }
        }
    }

    /// Holds the batch `seq` out of flushes until `unpin`, so a merge decided now can still rewrite it.
    /// False when the batch is gone or already handed to a flush.
    pub fn pin(&self, seq: u64) -> bool {
        let mut inner = self.lock();
        let in_flush = inner.flushing_through.is_some_and(|t| seq <= t);
        let present = inner.batches.iter().any(|b| b.seq == seq);
        if in_flush || !present {
            return false;
        }
        *inner.pins.entry(seq).or_insert(0) += 1;
        true
    }

    pub fn unpin(&self, seq: u64) {
        let mut inner = self.lock();
        if let Some(n) = inner.pins.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                inner.pins.remove(&seq);
            }
        }
    }

    /// The batch with sequence `seq`, if still buffered.
    pub fn batch(&self, seq: u64) -> Option<RecordBatch> {
        let inner = self.lock();
        inner
            .batches
            .iter()
            .find(|b| b.seq == seq)
            .map(|b| b.batch.clone())
    }

    /// Replaces the batch `seq` by `rewrite(batch)` (same rows; used to link a row to its merged twin).
    pub fn rewrite(&self, seq: u64, rewrite: impl FnOnce(&RecordBatch) -> Option<RecordBatch>) {
        let mut inner = self.lock();
        if let Some(hot) = inner.batches.iter_mut().find(|b| b.seq == seq)
            && let Some(new) = rewrite(&hot.batch)
            && new.num_rows() == hot.batch.num_rows()
        {
            let bytes = new.get_array_memory_size();
            let old = std::mem::replace(&mut hot.bytes, bytes);
            hot.batch = new;
            inner.bytes = inner.bytes - old + bytes;
        }
    }

    /// Remembers span ids that are already stored (used at start-up for recently flushed files).
    pub fn remember_flushed_ids(&self, ids: impl IntoIterator<Item = u64>) {
        let mut inner = self.lock();
        for h in ids {
            if inner.recent_ids.insert(h) {
                inner.recent_order.push_back(h);
            }
        }
        while inner.recent_order.len() > self.recent_capacity {
            if let Some(old) = inner.recent_order.pop_front() {
                inner.recent_ids.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{BodyFormat, parse_spans};

    fn batch(ids: &[&str]) -> RecordBatch {
        let body: String = ids
            .iter()
            .map(|id| format!("{{\"start_time\":\"2026-11-28T08:00:00Z\",\"span_id\":\"{id}\"}}\n"))
            .collect();
        parse_spans(body.as_bytes(), BodyFormat::Ndjson).unwrap()
    }

    #[test]
    fn duplicates_are_found_in_hot_recent_and_within_request() {
        let buffer = HotBuffer::new(2);
        buffer.push(1, batch(&["a", "b"]));
        let incoming = batch(&["a", "c", "c"]);
        assert_eq!(
            buffer.duplicates(span_ids(&incoming).unwrap(), &HashSet::new()),
            vec![true, false, true]
        );
        buffer.complete_flush(1);
        assert_eq!(buffer.bytes(), 0);
        // Still remembered after the flush, within the bound.
        assert_eq!(
            buffer.duplicates(span_ids(&batch(&["b"])).unwrap(), &HashSet::new()),
            vec![true]
        );
        buffer.push(2, batch(&["x", "y", "z"]));
        buffer.complete_flush(2);
        // Capacity 2: "a" and "b" fell out of the window.
        assert_eq!(
            buffer.duplicates(span_ids(&batch(&["a"])).unwrap(), &HashSet::new()),
            vec![false]
        );
    }

    #[test]
    fn flush_set_keeps_batches_visible_until_completed() {
        let buffer = HotBuffer::new(10);
        buffer.push(1, batch(&["a"]));
        buffer.push(2, batch(&["b"]));
        let set = buffer.flush_set().unwrap();
        assert_eq!((set.through_seq, set.rows), (2, 2));
        buffer.push(3, batch(&["c"]));
        assert_eq!(buffer.snapshot().len(), 3);
        buffer.complete_flush(set.through_seq);
        assert_eq!(
            buffer.snapshot().iter().map(|b| b.seq).collect::<Vec<_>>(),
            vec![3]
        );
    }
}
