//! One LLM call, two reports: the eBPF sensor sees it on the wire and the application's OpenTelemetry SDK
//! reports it through OTLP. This module recognises the pair and links it so the call counts once.
//!
//! **Matching** (in the WAL writer thread, so decisions follow WAL order): an arriving LLM span is matched
//! against recent LLM spans from a *different* source that still count (no `duplicate_of`). A candidate
//! must name the same model, overlap in time (2 s slack), agree on input and output tokens where both know
//! them, and share an identity: the same `trace_id` (the sensor records the `traceparent` the SDK
//! propagated), or the same process (`pid`, and `host` when both know it). Trace matches win, then the
//! closest start. A row made from an OTLP `gen_ai.client.inference.operation.details` log event (flagged
//! `event`) matches only its own span, by id; merged, it takes the span's timing.
//!
//! **Linking** never edits stored bytes. The arriving row (the second report) is written *merged*: every
//! field it lacks is taken from the first, `capture_flags` gets `merged` and `attributes` get
//! `lumen.merged_with` = the first row's span id. Then either
//! - the first row is still in the hot buffer and not being flushed: it is pinned (held out of flushes),
//!   and once the merged row is durable, its `duplicate_of` is set to the merged row's span id in the
//!   buffer, so the richer merged row is the one that counts; the first row reaches Parquet linked. WAL
//!   replay re-applies the same link from the merged row's `lumen.merged_with`; or
//! - it is already flushed: the merged row gets `duplicate_of` = the first row's span id instead.
//!
//! Either way exactly one row of the pair has `duplicate_of` NULL; `spans` shows only those rows and
//! `spans_all` shows both.

use std::collections::{BTreeSet, HashMap, VecDeque};

use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use std::time::{Duration, Instant};

use arrow::array::{
    Array, AsArray, ListArray, PrimitiveArray, RecordBatch, StringArray, new_null_array,
};
use arrow::datatypes::{Int64Type, TimestampNanosecondType, UInt32Type};

use crate::parse::{Cell, build_batch, row_cells};
use crate::policy::flags;
use crate::schema::{COLUMNS, column_index, names};

/// Attribute naming the other row of a merged pair.
pub const MERGED_WITH: &str = "lumen.merged_with";

/// How far apart two reports of one call may start or end.
const SLACK_NS: i64 = 2_000_000_000;

/// Two reports of one call start within this of each other (an SDK span starts before the request's
/// first byte, by the client's set-up time; a minute is far more than that).
const MAX_START_SKEW_NS: i64 = 60_000_000_000;

const DETAILS_SUFFIX: &str = "-details";

/// Columns not copied from the first report into the merged one: identity and linkage of the row itself.
const OWN_COLUMNS: &[&str] = &[
    "trace_id",
    "span_id",
    "parent_span_id",
    "source",
    "duplicate_of",
    "capture_flags",
    "attributes",
];

fn col(name: &str) -> usize {
    column_index(name).expect("column of the span contract")
}

/// Columns left out of a call's summary: content (large) and attributes.
const NOT_SUMMARISED: &[&str] = &[
    "input_messages",
    "output_messages",
    "system_instructions",
    "tool_definitions",
    "attributes",
];

/// One LLM span that may still be matched.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    seq: u64,
    span_id: String,
    trace_id: String,
    source: String,
    pid: Option<u64>,
    host: Option<String>,
    models: Vec<String>,
    start: i64,
    end: i64,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    linked: bool,
    /// An OTLP log event about the call (linked to its span by id), not the call's own span.
    event: bool,
    arrived: Instant,
    /// The row without content and attributes, for merging once the row has left the buffer.
    summary: Option<Summary>,
}

/// Where a call's summary is read from, only when it is merged after its batch left the buffer: the
/// batch with content and attributes replaced by nulls (shared by the calls of one batch: no per-row
/// copy of some thirty fields on the ingest path), and the row.
#[derive(Debug, Clone)]
struct Summary {
    batch: Arc<RecordBatch>,
    row: usize,
}

impl Call {
    fn summary_cells(&self) -> Vec<Cell> {
        match &self.summary {
            Some(s) => row_cells(&s.batch, s.row),
            None => vec![Cell::Null; COLUMNS.len()],
        }
    }
}

/// `batch` with the columns left out of summaries all null (their buffers are not kept alive).
fn summary_batch(batch: &RecordBatch) -> Option<RecordBatch> {
    let schema = batch.schema();
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if NOT_SUMMARISED.contains(&field.name().as_str()) {
                new_null_array(field.data_type(), batch.num_rows())
            } else {
                column.clone()
            }
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).ok()
}

fn text(cells: &[Cell], name: &str) -> Option<String> {
    match &cells[col(name)] {
        Cell::Str(s) => Some(s.clone()),
        _ => None,
    }
}

fn attribute<'a>(cells: &'a [Cell], key: &str) -> Option<&'a str> {
    match &cells[col(names::ATTRIBUTES)] {
        Cell::Map(entries) => entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str()),
        _ => None,
    }
}

fn has_flag(cells: &[Cell], flag: &str) -> bool {
    matches!(&cells[col(names::CAPTURE_FLAGS)], Cell::List(items) if items.iter().any(|f| f == flag))
}

/// Typed access to the few columns matching reads, without copying whole rows (this runs for every
/// ingested batch on the WAL writer thread).
struct View<'a> {
    span_id: &'a StringArray,
    trace_id: &'a StringArray,
    source: &'a StringArray,
    provider: &'a StringArray,
    request_model: &'a StringArray,
    response_model: &'a StringArray,
    host: &'a StringArray,
    duplicate_of: &'a StringArray,
    pid: &'a PrimitiveArray<UInt32Type>,
    start: &'a PrimitiveArray<TimestampNanosecondType>,
    end: &'a PrimitiveArray<TimestampNanosecondType>,
    input_tokens: &'a PrimitiveArray<Int64Type>,
    output_tokens: &'a PrimitiveArray<Int64Type>,
    flags: &'a ListArray,
}

impl<'a> View<'a> {
    fn new(batch: &'a RecordBatch) -> Option<View<'a>> {
        let s = |n: &str| batch.columns().get(col(n))?.as_string_opt::<i32>();
        Some(View {
            span_id: s(names::SPAN_ID)?,
            trace_id: s(names::TRACE_ID)?,
            source: s("source")?,
            provider: s("provider")?,
            request_model: s("request_model")?,
            response_model: s("response_model")?,
            host: s("host")?,
            duplicate_of: s(names::DUPLICATE_OF)?,
            pid: batch.columns().get(col("pid"))?.as_primitive_opt()?,
            start: batch
                .columns()
                .get(col(names::START_TIME))?
                .as_primitive_opt()?,
            end: batch
                .columns()
                .get(col(names::END_TIME))?
                .as_primitive_opt()?,
            input_tokens: batch
                .columns()
                .get(col("input_tokens"))?
                .as_primitive_opt()?,
            output_tokens: batch
                .columns()
                .get(col("output_tokens"))?
                .as_primitive_opt()?,
            flags: batch
                .columns()
                .get(col(names::CAPTURE_FLAGS))?
                .as_list_opt()?,
        })
    }

    fn str(a: &'a StringArray, row: usize) -> Option<&'a str> {
        (!a.is_null(row)).then(|| a.value(row))
    }

    fn is_llm_call(&self, row: usize) -> bool {
        !self.provider.is_null(row) || !self.request_model.is_null(row)
    }

    fn flagged(&self, row: usize, flag: &str) -> bool {
        if self.flags.is_null(row) {
            return false;
        }
        let items = self.flags.value(row);
        let items = items.as_string::<i32>();
        (0..items.len()).any(|i| !items.is_null(i) && items.value(i) == flag)
    }

    fn merged(&self, row: usize) -> bool {
        self.flagged(row, flags::MERGED)
    }

    fn call(&self, seq: u64, row: usize) -> Option<Call> {
        let num = |a: &PrimitiveArray<Int64Type>| (!a.is_null(row)).then(|| a.value(row));
        let models = [self.request_model, self.response_model]
            .iter()
            .filter_map(|a| Self::str(a, row))
            .map(|m| m.to_ascii_lowercase())
            .collect();
        Some(Call {
            seq,
            span_id: Self::str(self.span_id, row)?.to_string(),
            trace_id: Self::str(self.trace_id, row)?.to_string(),
            source: Self::str(self.source, row).unwrap_or_default().to_string(),
            pid: (!self.pid.is_null(row)).then(|| self.pid.value(row) as u64),
            host: Self::str(self.host, row).map(str::to_string),
            models,
            start: self.start.value(row),
            end: self.end.value(row),
            input_tokens: num(self.input_tokens),
            output_tokens: num(self.output_tokens),
            linked: !self.duplicate_of.is_null(row),
            event: self.flagged(row, flags::EVENT),
            arrived: Instant::now(),
            summary: None,
        })
    }
}

impl Call {
    /// Whether `other` (an arriving row) reports the same call; `Some(true)` for a trace-context match.
    fn matches(&self, other: &Call) -> Option<bool> {
        if self.linked {
            return None;
        }
        // An event row names its span exactly.
        if self.event != other.event {
            let (event, span) = if self.event {
                (self, other)
            } else {
                (other, self)
            };
            return (event.span_id == details_span_id(&span.span_id)).then_some(true);
        }
        if self.source == other.source {
            return None;
        }
        let same_model = self.models.iter().any(|m| other.models.contains(m));
        let tokens_agree = |a: Option<i64>, b: Option<i64>| a.zip(b).is_none_or(|(a, b)| a == b);
        let overlap = self.start <= other.end.saturating_add(SLACK_NS)
            && other.start <= self.end.saturating_add(SLACK_NS);
        let close_starts = self.start.saturating_sub(other.start).abs() <= MAX_START_SKEW_NS;
        if !same_model
            || !overlap
            || !close_starts
            || !tokens_agree(self.input_tokens, other.input_tokens)
            || !tokens_agree(self.output_tokens, other.output_tokens)
        {
            return None;
        }
        if self.trace_id == other.trace_id {
            return Some(true);
        }
        let same_host = match (&self.host, &other.host) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        (self.pid.is_some() && self.pid == other.pid && same_host).then_some(false)
    }
}

/// The span id of the row made from a span's `gen_ai.client.inference.operation.details` event.
pub fn details_span_id(span_id: &str) -> String {
    format!("{span_id}{DETAILS_SUFFIX}")
}

/// The LLM calls of a batch (row index and call, with its summary). Computed before the batch reaches
/// the single WAL writer thread, so the writer only moves them into the index.
pub(crate) fn calls_of(batch: &RecordBatch) -> Vec<(usize, Call)> {
    let Some(view) = View::new(batch) else {
        return Vec::new();
    };
    let mut summary: Option<Option<Arc<RecordBatch>>> = None;
    (0..batch.num_rows())
        .filter(|row| view.is_llm_call(*row))
        .filter_map(|row| {
            let mut call = view.call(0, row)?;
            let shared = summary.get_or_insert_with(|| summary_batch(batch).map(Arc::new));
            call.summary = shared.clone().map(|batch| Summary { batch, row });
            Some((row, call))
        })
        .collect()
}

/// Keys of the lookup maps: 64-bit hashes of (source, trace id), (source, pid, model) and span id,
/// rather than owned strings, so indexing and expiring a row allocates and compares no key text (the
/// index runs for every LLM row on the single WAL writer thread). A hash names candidates only: every
/// candidate is checked against the call's own fields (`Call::matches`, span id equality).
type Key = u64;

/// Recent LLM spans, bounded in count and age. Lookups are keyed by source, so a busy process's own
/// calls (one source) never become candidates for each other, and by start time, so only calls that
/// began within `MAX_START_SKEW_NS` are looked at: matching stays O(matches), not O(recent calls).
pub(crate) struct CallIndex {
    calls: HashMap<u64, Call, RandomState>,
    order: VecDeque<u64>,
    by_trace: HashMap<Key, Vec<u64>, RandomState>,
    by_process: HashMap<Key, BTreeSet<(i64, u64)>, RandomState>,
    by_span: HashMap<Key, Vec<u64>, RandomState>,
    /// Seeded per process, so keys cannot be chosen to collide.
    keys: RandomState,
    sources: Vec<String>,
    next: u64,
    capacity: usize,
    max_age: Duration,
    /// Calls linked so far (both reports of one call count as one).
    pub merged_total: u64,
}

/// A link to finish once the merged row is durable: set `duplicate_of` of `first_span_id` (in batch
/// `first_seq`, pinned) to `merged_span_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingLink {
    pub first_seq: u64,
    pub first_span_id: String,
    pub merged_span_id: String,
}

impl CallIndex {
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        CallIndex {
            calls: HashMap::default(),
            order: VecDeque::new(),
            by_trace: HashMap::default(),
            by_process: HashMap::default(),
            by_span: HashMap::default(),
            keys: RandomState::default(),
            sources: Vec::new(),
            next: 0,
            capacity,
            max_age,
            merged_total: 0,
        }
    }

    fn trace_key(&self, source: &str, trace_id: &str) -> Key {
        self.keys.hash_one((source, trace_id))
    }

    fn process_key(&self, source: &str, pid: u64, model: &str) -> Key {
        self.keys.hash_one((source, pid, model))
    }

    fn span_key(&self, span_id: &str) -> Key {
        self.keys.hash_one(span_id)
    }

    /// The indexed call with this span id, if any (the newest, when a span id came twice).
    fn by_span_id(&self, span_id: &str) -> Option<u64> {
        self.by_span
            .get(&self.span_key(span_id))?
            .iter()
            .rev()
            .copied()
            .find(|id| self.calls.get(id).is_some_and(|c| c.span_id == span_id))
    }

    fn expire(&mut self) {
        while let Some(&id) = self.order.front() {
            let old = self
                .calls
                .get(&id)
                .is_none_or(|c| c.arrived.elapsed() > self.max_age);
            if !old && self.calls.len() <= self.capacity {
                break;
            }
            self.order.pop_front();
            if let Some(call) = self.calls.remove(&id) {
                let key = self.trace_key(&call.source, &call.trace_id);
                remove_from(&mut self.by_trace, &key, id);
                if let Some(pid) = call.pid {
                    for model in &call.models {
                        let key = self.process_key(&call.source, pid, model);
                        if let Some(set) = self.by_process.get_mut(&key) {
                            set.remove(&(call.start, id));
                            if set.is_empty() {
                                self.by_process.remove(&key);
                            }
                        }
                    }
                }
                let key = self.span_key(&call.span_id);
                remove_from(&mut self.by_span, &key, id);
            }
        }
    }

    /// Indexes the LLM calls of a batch that is now in the WAL as sequence `seq`.
    pub fn insert(&mut self, seq: u64, calls: Vec<(usize, Call)>) {
        for (_, mut call) in calls {
            call.seq = seq;
            call.arrived = Instant::now();
            let id = self.next;
            self.next += 1;
            if !self.sources.contains(&call.source) {
                self.sources.push(call.source.clone());
            }
            let key = self.trace_key(&call.source, &call.trace_id);
            self.by_trace.entry(key).or_default().push(id);
            if let Some(pid) = call.pid {
                for model in &call.models {
                    let key = self.process_key(&call.source, pid, model);
                    self.by_process
                        .entry(key)
                        .or_default()
                        .insert((call.start, id));
                }
            }
            let key = self.span_key(&call.span_id);
            self.by_span.entry(key).or_default().push(id);
            self.calls.insert(id, call);
            self.order.push_back(id);
        }
        self.expire();
    }

    /// Indexes a batch read back from the WAL.
    pub fn insert_batch(&mut self, seq: u64, batch: &RecordBatch) {
        self.insert(seq, calls_of(batch));
    }

    fn best_match(&self, arriving: &Call) -> Option<u64> {
        let mut candidates: Vec<u64> = Vec::new();
        // An event and its span name each other.
        let partner = match arriving.span_id.strip_suffix(DETAILS_SUFFIX) {
            Some(span) if arriving.event => span.to_string(),
            _ => details_span_id(&arriving.span_id),
        };
        candidates.extend(self.by_span_id(&partner));
        for source in self.sources.iter().filter(|s| **s != arriving.source) {
            if let Some(ids) = self
                .by_trace
                .get(&self.trace_key(source, &arriving.trace_id))
            {
                candidates.extend(ids);
            }
            let Some(pid) = arriving.pid else {
                continue;
            };
            let from = (arriving.start.saturating_sub(MAX_START_SKEW_NS), 0);
            let to = (arriving.start.saturating_add(MAX_START_SKEW_NS), u64::MAX);
            for model in &arriving.models {
                if let Some(set) = self.by_process.get(&self.process_key(source, pid, model)) {
                    candidates.extend(set.range(from..=to).map(|(_, id)| *id));
                }
            }
        }
        candidates
            .into_iter()
            .filter_map(|id| {
                let call = self.calls.get(&id)?;
                let by_trace = call.matches(arriving)?;
                Some((!by_trace, (call.start - arriving.start).unsigned_abs(), id))
            })
            .min()
            .map(|(_, _, id)| id)
    }

    /// Links the rows of `batch` (about to be appended to the WAL) to earlier reports of the same calls.
    /// Returns the rewritten batch (when any row matched) and the links to finish after the fsync.
    /// `pin` holds a buffered batch out of flushes and says whether that worked; `fetch` reads one.
    pub fn link(
        &mut self,
        batch: &RecordBatch,
        arriving_calls: &mut [(usize, Call)],
        pin: impl Fn(u64) -> bool,
        fetch: impl Fn(u64) -> Option<RecordBatch>,
    ) -> (Option<RecordBatch>, Vec<PendingLink>) {
        self.expire();
        let mut rows: Option<Vec<Vec<Cell>>> = None;
        let mut links = Vec::new();
        for (row, arriving) in arriving_calls.iter_mut() {
            let row = *row;
            if arriving.linked {
                continue;
            }
            let Some(id) = self.best_match(arriving) else {
                continue;
            };
            let Some(first) = self.calls.get(&id).cloned() else {
                continue;
            };
            self.merged_total += 1;
            let cells = row_cells(batch, row);
            let mut merged = match fetch(first.seq).and_then(|b| find_row(&b, &first.span_id)) {
                Some(full_first) => merge(cells, &full_first),
                None => merge(cells, &first.summary_cells()),
            };
            set_attribute(&mut merged, MERGED_WITH, &first.span_id);
            add_flag(&mut merged, flags::MERGED);
            // The arriving row no longer is an event once it holds its span's fields.
            if let Cell::List(items) = &mut merged[col(names::CAPTURE_FLAGS)] {
                items.retain(|f| f != flags::EVENT);
            }
            if pin(first.seq) {
                // The merged row counts from now on (and may be linked again, e.g. to its event).
                if let Some(first) = self.calls.get_mut(&id) {
                    first.linked = true;
                }
                arriving.event = false;
                links.push(PendingLink {
                    first_seq: first.seq,
                    first_span_id: first.span_id.clone(),
                    merged_span_id: arriving.span_id.clone(),
                });
            } else {
                arriving.linked = true;
                merged[col(names::DUPLICATE_OF)] = Cell::Str(first.span_id.clone());
            }
            let rows =
                rows.get_or_insert_with(|| (0..batch.num_rows()).map(|_| Vec::new()).collect());
            rows[row] = merged;
        }
        let Some(mut rows) = rows else {
            return (None, links);
        };
        for (row, cells) in rows.iter_mut().enumerate() {
            if cells.is_empty() {
                *cells = row_cells(batch, row);
            }
        }
        (Some(build_batch(rows)), links)
    }

    /// During WAL replay: the merged rows of `batch` re-link their first rows if those are still
    /// buffered. Returns the links to apply (the first rows' batches are already in the buffer).
    pub fn relink_replayed(&mut self, batch: &RecordBatch) -> Vec<PendingLink> {
        let mut links = Vec::new();
        let Some(view) = View::new(batch) else {
            return links;
        };
        for row in 0..batch.num_rows() {
            if !view.merged(row) {
                continue;
            }
            let cells = row_cells(batch, row);
            if !has_flag(&cells, flags::MERGED)
                || !matches!(cells[col(names::DUPLICATE_OF)], Cell::Null)
            {
                continue;
            }
            let (Some(first), Some(merged)) =
                (attribute(&cells, MERGED_WITH), text(&cells, names::SPAN_ID))
            else {
                continue;
            };
            if let Some(call) = self
                .by_span_id(first)
                .and_then(|id| self.calls.get_mut(&id))
            {
                call.linked = true;
                links.push(PendingLink {
                    first_seq: call.seq,
                    first_span_id: first.to_string(),
                    merged_span_id: merged,
                });
            }
        }
        links
    }
}

fn remove_from<K: std::hash::Hash + Eq, S: std::hash::BuildHasher>(
    map: &mut HashMap<K, Vec<u64>, S>,
    key: &K,
    id: u64,
) {
    if let Some(ids) = map.get_mut(key) {
        ids.retain(|i| *i != id);
        if ids.is_empty() {
            map.remove(key);
        }
    }
}

fn find_row(batch: &RecordBatch, span_id: &str) -> Option<Vec<Cell>> {
    let ids = batch.column(col(names::SPAN_ID)).as_string::<i32>();
    (0..ids.len())
        .find(|i| !ids.is_null(*i) && ids.value(*i) == span_id)
        .map(|i| row_cells(batch, i))
}

/// The arriving row with every field it lacks taken from `first`; attributes are united (the arriving
/// row's values win) and so are capture flags.
/// Timing and position of a call: an event row (stamped when the call ended) takes these from its span.
const SPAN_TIMING: &[&str] = &[
    "start_time",
    "end_time",
    "duration_ms",
    "ttft_ms",
    "span_kind",
    "parent_span_id",
];

fn merge(mut arriving: Vec<Cell>, first: &[Cell]) -> Vec<Cell> {
    if has_flag(&arriving, flags::EVENT) {
        for name in SPAN_TIMING {
            let i = col(name);
            if !matches!(first[i], Cell::Null) {
                arriving[i] = first[i].clone();
            }
        }
    }
    for (i, column) in COLUMNS.iter().enumerate() {
        if OWN_COLUMNS.contains(&column.name) {
            continue;
        }
        if matches!(arriving[i], Cell::Null) && !matches!(first[i], Cell::Null) {
            arriving[i] = first[i].clone();
        }
    }
    if let Cell::Map(theirs) = &first[col(names::ATTRIBUTES)] {
        for (k, v) in theirs {
            if k != MERGED_WITH && attribute(&arriving, k).is_none() {
                set_attribute(&mut arriving, k, v);
            }
        }
    }
    if let Cell::List(theirs) = &first[col(names::CAPTURE_FLAGS)] {
        for flag in theirs {
            add_flag(&mut arriving, flag);
        }
    }
    arriving
}

fn set_attribute(cells: &mut [Cell], key: &str, value: &str) {
    let slot = &mut cells[col(names::ATTRIBUTES)];
    if matches!(slot, Cell::Null) {
        *slot = Cell::Map(Vec::new());
    }
    if let Cell::Map(entries) = slot {
        entries.retain(|(k, _)| k != key);
        entries.push((key.to_string(), value.to_string()));
        entries.sort();
    }
}

fn add_flag(cells: &mut [Cell], flag: &str) {
    let slot = &mut cells[col(names::CAPTURE_FLAGS)];
    if matches!(slot, Cell::Null) {
        *slot = Cell::List(Vec::new());
    }
    if let Cell::List(items) = slot
        && !items.iter().any(|f| f == flag)
    {
        items.push(flag.to_string());
    }
}

/// `batch` with `duplicate_of` of the row `span_id` set to `duplicate_of`; `None` when the row is absent.
pub(crate) fn set_duplicate_of(
    batch: &RecordBatch,
    span_id: &str,
    duplicate_of: &str,
) -> Option<RecordBatch> {
    let ids = batch.column(col(names::SPAN_ID)).as_string::<i32>();
    let row = (0..ids.len()).find(|i| !ids.is_null(*i) && ids.value(*i) == span_id)?;
    let old = batch.column(col(names::DUPLICATE_OF)).as_string::<i32>();
    let new: StringArray = (0..old.len())
        .map(|i| {
            if i == row {
                Some(duplicate_of)
            } else if old.is_null(i) {
                None
            } else {
                Some(old.value(i))
            }
        })
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[col(names::DUPLICATE_OF)] = std::sync::Arc::new(new);
    RecordBatch::try_new(batch.schema(), columns).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{BodyFormat, parse_spans};

    fn batch(lines: &[String]) -> RecordBatch {
        parse_spans(lines.join("\n").as_bytes(), BodyFormat::Ndjson).unwrap()
    }

    fn span(id: &str, source: &str, extra: &str) -> String {
        format!(
            r#"{{"span_id":"{id}","source":"{source}","start_time":1000000000000,"end_time":1001500000000,"provider":"openai","request_model":"gpt-4o-mini","input_tokens":12,"output_tokens":7{extra}}}"#
        )
    }

    fn link(
        index: &mut CallIndex,
        batch: &RecordBatch,
        pin: impl Fn(u64) -> bool,
        fetch: impl Fn(u64) -> Option<RecordBatch>,
    ) -> (Option<RecordBatch>, Vec<PendingLink>) {
        let mut calls = calls_of(batch);
        index.link(batch, &mut calls, pin, fetch)
    }

    fn cell(batch: &RecordBatch, row: usize, name: &str) -> Cell {
        row_cells(batch, row).swap_remove(col(name))
    }

    #[test]
    fn same_process_model_time_and_tokens_link_once() {
        let mut index = CallIndex::new(100, Duration::from_secs(600));
        let sensor = batch(&[span(
            "s1",
            "ebpf",
            r#","pid":42,"process_name":"python3","input_messages":"[]""#,
        )]);
        index.insert_batch(1, &sensor);
        let sdk = batch(&[span(
            "o1",
            "otlp",
            r#","pid":42,"service_name":"chat-api","trace_id":"abc""#,
        )]);
        let (merged, links) = link(&mut index, &sdk, |_| true, |_| Some(sensor.clone()));
        let merged = merged.expect("matched");
        assert_eq!(
            links,
            vec![PendingLink {
                first_seq: 1,
                first_span_id: "s1".into(),
                merged_span_id: "o1".into()
            }]
        );
        assert_eq!(
            cell(&merged, 0, "process_name"),
            Cell::Str("python3".into())
        );
        assert_eq!(
            cell(&merged, 0, "input_messages"),
            Cell::Str("[]".into()),
            "content is merged from the buffered row"
        );
        assert_eq!(cell(&merged, 0, "duplicate_of"), Cell::Null);
        assert_eq!(cell(&merged, 0, "trace_id"), Cell::Str("abc".into()));
        // Linked once: a third report of the same call is not linked again.
        let again = batch(&[span("o2", "otlp", r#","pid":42"#)]);
        assert!(link(&mut index, &again, |_| true, |_| None).0.is_none());
        let linked = set_duplicate_of(&sensor, "s1", "o1").unwrap();
        assert_eq!(cell(&linked, 0, "duplicate_of"), Cell::Str("o1".into()));
    }

    #[test]
    fn a_flushed_first_row_makes_the_merged_row_the_duplicate() {
        let mut index = CallIndex::new(100, Duration::from_secs(600));
        index.insert_batch(
            1,
            &batch(&[span(
                "s1",
                "ebpf",
                r#","pid":7,"server_address":"api.openai.com","input_messages":"[]""#,
            )]),
        );
        let sdk = batch(&[span("o1", "otlp", r#","pid":7"#)]);
        let (merged, links) = link(&mut index, &sdk, |_| false, |_| None);
        assert!(links.is_empty());
        let merged = merged.unwrap();
        assert_eq!(cell(&merged, 0, "duplicate_of"), Cell::Str("s1".into()));
        assert_eq!(
            cell(&merged, 0, "server_address"),
            Cell::Str("api.openai.com".into()),
            "fields are merged from the index's summary"
        );
        assert_eq!(
            cell(&merged, 0, "input_messages"),
            Cell::Null,
            "content is not kept in the index"
        );
        assert!(
            matches!(cell(&merged, 0, "capture_flags"), Cell::List(f) if f.contains(&"merged".to_string()))
        );
    }

    #[test]
    fn different_tokens_processes_models_or_times_do_not_link() {
        let mut index = CallIndex::new(100, Duration::from_secs(600));
        index.insert_batch(1, &batch(&[span("s1", "ebpf", r#","pid":7"#)]));
        for other in [
            span("o1", "otlp", r#","pid":8"#),
            span("o2", "otlp", r#","pid":7"#).replace("\"output_tokens\":7", "\"output_tokens\":8"),
            span("o3", "otlp", r#","pid":7"#).replace("gpt-4o-mini", "gpt-4o"),
            span("o4", "otlp", r#","pid":7"#)
                .replace("1000000000000", "1100000000000")
                .replace("1001500000000", "1101500000000"),
            span("s9", "ebpf", r#","pid":7"#),
        ] {
            let (merged, _) = link(
                &mut index,
                &batch(std::slice::from_ref(&other)),
                |_| true,
                |_| None,
            );
            assert!(merged.is_none(), "should not link: {other}");
        }
    }

    #[test]
    fn trace_context_links_without_a_pid_and_replay_relinks() {
        let mut index = CallIndex::new(100, Duration::from_secs(600));
        let sensor = batch(&[span("s1", "ebpf", r#","trace_id":"t1""#)]);
        index.insert_batch(1, &sensor);
        let (merged, links) = link(
            &mut index,
            &batch(&[span("o1", "otlp", r#","trace_id":"t1""#)]),
            |_| true,
            |_| None,
        );
        let merged = merged.unwrap();
        assert_eq!(links.len(), 1);
        // A fresh index that replays both records reaches the same link.
        let mut replay = CallIndex::new(100, Duration::from_secs(600));
        replay.insert_batch(1, &sensor);
        assert_eq!(replay.relink_replayed(&merged), links);
    }
}
