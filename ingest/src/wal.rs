//! The write-ahead log: numbered segment files of checksummed records, each record one accepted request
//! (an Arrow IPC stream of its spans) with a monotonically increasing sequence number.
//!
//! Record layout: `len: u32 LE | crc32c(seq ‖ payload): u32 LE | seq: u64 LE | payload[len]`.
//! A torn or corrupt record ends its segment: on replay it is dropped (it was never acknowledged, because
//! acknowledgement waits for the fsync that covers it) and the segment is truncated there.
//! This module is synchronous on purpose: it runs on the WAL writer thread, where blocking on fsync is the job.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

const MAGIC: &[u8; 8] = b"LUMENWAL";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 12;
const RECORD_HEADER_LEN: usize = 16;
/// A record longer than this is taken as corruption, not an allocation to attempt.
const MAX_RECORD_LEN: u32 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("a WAL record of {0} bytes is over the 1 GiB record limit")]
    TooLarge(usize),
    #[error("encoding or decoding a WAL record: {0}")]
    Encode(#[from] arrow::error::ArrowError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;

/// A closed segment and the highest sequence number in it.
#[derive(Debug, Clone)]
struct ClosedSegment {
    path: PathBuf,
    max_seq: u64,
    bytes: u64,
}

/// What replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub segments: usize,
    pub records: usize,
    pub skipped_persisted: usize,
    /// Torn or corrupt tails dropped (one per affected segment).
    pub torn_tails: usize,
    pub last_seq: u64,
}

/// The log on disk. Owned by one writer thread.
pub struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    closed: Vec<ClosedSegment>,
    active: Option<ActiveSegment>,
    next_seq: u64,
}

struct ActiveSegment {
    path: PathBuf,
    file: File,
    bytes: u64,
    max_seq: u64,
}

/// Encodes one batch as a self-contained Arrow IPC stream.
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 2 + 4096);
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Decodes what `encode_batch` wrote.
pub fn decode_batches(payload: &[u8]) -> Result<Vec<RecordBatch>> {
    let reader = StreamReader::try_new(payload, None)?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

impl Wal {
    /// Opens the log in `dir`, replaying every record with a sequence number above `persisted_seq`
    /// through `on_record`. Afterwards new records continue above everything seen and above `persisted_seq`.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        persisted_seq: u64,
        mut on_record: impl FnMut(u64, &[u8]),
    ) -> Result<(Self, ReplayReport)> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wal"))
            .collect();
        paths.sort();

        let mut report = ReplayReport {
            last_seq: persisted_seq,
            ..Default::default()
        };
        let mut closed = Vec::new();
        for path in paths {
            report.segments += 1;
            let (max_seq, bytes) =
                replay_segment(&path, persisted_seq, &mut report, &mut on_record)?;
            if max_seq == 0 || max_seq <= persisted_seq {
                // Everything in it is already in Parquet (or it is empty): it can go now.
                fs::remove_file(&path).map_err(io_err(&path))?;
            } else {
                closed.push(ClosedSegment {
                    path,
                    max_seq,
                    bytes,
                });
            }
        }
        sync_dir(dir)?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            segment_bytes,
            closed,
            active: None,
            next_seq: report.last_seq + 1,
        };
        Ok((wal, report))
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Bytes of all segments on disk.
    pub fn total_bytes(&self) -> u64 {
        self.closed.iter().map(|s| s.bytes).sum::<u64>()
            + self.active.as_ref().map_or(0, |a| a.bytes)
    }

    /// Appends one record (not yet durable: call `sync`). Returns its sequence number.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64> {
        if payload.len() > MAX_RECORD_LEN as usize {
            // Replay would take it for corruption: refuse it rather than acknowledge it.
            return Err(WalError::TooLarge(payload.len()));
        }
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.bytes >= self.segment_bytes)
        {
            self.rotate()?;
        }
        let seq = self.next_seq;
        if self.active.is_none() {
            self.active = Some(self.create_segment(seq)?);
        }
        let active = self
            .active
            .as_mut()
            .expect("active segment was just ensured");
        let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&record_crc(seq, payload).to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(payload);
        active
            .file
            .write_all(&record)
            .map_err(io_err(&active.path))?;
        active.bytes += record.len() as u64;
        active.max_seq = seq;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Makes every appended record durable (one fsync for all of them: group commit).
    pub fn sync(&mut self) -> Result<()> {
        if let Some(active) = &self.active {
            active.file.sync_data().map_err(io_err(&active.path))?;
        }
        Ok(())
    }

    /// Closes the active segment; the next append starts a new one.
    pub fn rotate(&mut self) -> Result<()> {
        if let Some(active) = self.active.take() {
            active.file.sync_all().map_err(io_err(&active.path))?;
            self.closed.push(ClosedSegment {
                path: active.path,
                max_seq: active.max_seq,
                bytes: active.bytes,
            });
        }
        Ok(())
    }

    /// Deletes closed segments whose records are all at or below `seq` (they are in Parquet now).
    /// The active segment is closed first (a flush just happened, so its records will be persisted by the
    /// next one at the latest and the segment can then go as a whole).
    pub fn remove_persisted(&mut self, seq: u64) -> Result<usize> {
        if self.active.as_ref().is_some_and(|a| a.max_seq > 0) {
            self.rotate()?;
        }
        let (gone, keep): (Vec<_>, Vec<_>) = self.closed.drain(..).partition(|s| s.max_seq <= seq);
        self.closed = keep;
        for segment in &gone {
            fs::remove_file(&segment.path).map_err(io_err(&segment.path))?;
        }
        if !gone.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(gone.len())
    }

    fn create_segment(&self, first_seq: u64) -> Result<ActiveSegment> {
        let path = self.dir.join(segment_name(first_seq));
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        file.write_all(&header).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        Ok(ActiveSegment {
            path,
            file,
            bytes: HEADER_LEN,
            max_seq: 0,
        })
    }
}

fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Replays one segment; returns (max seq seen, valid bytes). Truncates a torn tail.
fn replay_segment(
    path: &Path,
    persisted_seq: u64,
    report: &mut ReplayReport,
    on_record: &mut impl FnMut(u64, &[u8]),
) -> Result<(u64, u64)> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    let mut header = [0u8; HEADER_LEN as usize];
    if file.read_exact(&mut header).is_err() || &header[..8] != MAGIC {
        // A segment whose header never made it to disk holds no acknowledged record.
        tracing::warn!(path = %path.display(), "WAL segment without a valid header; dropping it");
        report.torn_tails += 1;
        file.set_len(0).map_err(io_err(path))?;
        return Ok((0, 0));
    }
    let mut offset = HEADER_LEN;
    let mut max_seq = 0;
    let mut record_header = [0u8; RECORD_HEADER_LEN];
    let mut payload = Vec::new();
    loop {
        if offset == file_len {
            break;
        }
        let torn = match file.read_exact(&mut record_header) {
            Err(_) => true,
            Ok(()) => {
                let len = u32::from_le_bytes(record_header[0..4].try_into().expect("4 bytes"));
                let crc = u32::from_le_bytes(record_header[4..8].try_into().expect("4 bytes"));
                let seq = u64::from_le_bytes(record_header[8..16].try_into().expect("8 bytes"));
                if len > MAX_RECORD_LEN || offset + RECORD_HEADER_LEN as u64 + len as u64 > file_len
                {
                    true
                } else {
                    payload.resize(len as usize, 0);
                    if file.read_exact(&mut payload).is_err() || record_crc(seq, &payload) != crc {
                        true
                    } else {
                        offset += RECORD_HEADER_LEN as u64 + len as u64;
                        max_seq = max_seq.max(seq);
                        report.last_seq = report.last_seq.max(seq);
                        if seq <= persisted_seq {
                            report.skipped_persisted += 1;
                        } else {
                            report.records += 1;
                            on_record(seq, &payload);
                        }
                        false
                    }
                }
            }
        };
        if torn {
            tracing::warn!(path = %path.display(), offset, "torn WAL record dropped (it was never acknowledged)");
            report.torn_tails += 1;
            file.set_len(offset).map_err(io_err(path))?;
            file.sync_all().map_err(io_err(path))?;
            break;
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    Ok((max_seq, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay_all(dir: &Path, persisted: u64) -> (Wal, ReplayReport, Vec<(u64, Vec<u8>)>) {
        let mut seen = Vec::new();
        let (wal, report) = Wal::open(dir, 1 << 20, persisted, |seq, p| {
            seen.push((seq, p.to_vec()))
        })
        .unwrap();
        (wal, report, seen)
    }

    #[test]
    fn records_survive_reopen_and_sequence_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = replay_all(dir.path(), 0);
        assert_eq!(wal.append(b"one").unwrap(), 1);
        assert_eq!(wal.append(b"two").unwrap(), 2);
        wal.sync().unwrap();
        drop(wal);
        let (mut wal, report, seen) = replay_all(dir.path(), 0);
        assert_eq!(seen, vec![(1, b"one".to_vec()), (2, b"two".to_vec())]);
        assert_eq!(report.records, 2);
        assert_eq!(wal.append(b"three").unwrap(), 3);
    }

    #[test]
    fn torn_tail_is_dropped_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = replay_all(dir.path(), 0);
        wal.append(b"kept").unwrap();
        wal.append(b"torn-record").unwrap();
        wal.sync().unwrap();
        let path = wal.active.as_ref().unwrap().path.clone();
        drop(wal);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (_, report, seen) = replay_all(dir.path(), 0);
        assert_eq!(seen, vec![(1, b"kept".to_vec())]);
        assert_eq!(report.torn_tails, 1);
        // The torn bytes are gone, so a second replay is clean.
        let (_, report, _) = replay_all(dir.path(), 0);
        assert_eq!(report.torn_tails, 0);
    }

    #[test]
    fn corrupt_payload_fails_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = replay_all(dir.path(), 0);
        wal.append(b"good").unwrap();
        wal.append(b"flipped").unwrap();
        wal.sync().unwrap();
        let path = wal.active.as_ref().unwrap().path.clone();
        drop(wal);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let (_, _, seen) = replay_all(dir.path(), 0);
        assert_eq!(seen, vec![(1, b"good".to_vec())]);
    }

    #[test]
    fn persisted_records_are_skipped_and_segments_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _, _) = replay_all(dir.path(), 0);
        for i in 0..5u8 {
            wal.append(&[i]).unwrap();
            wal.rotate().unwrap();
        }
        wal.sync().unwrap();
        assert_eq!(wal.remove_persisted(3).unwrap(), 3);
        drop(wal);
        let (wal, report, seen) = replay_all(dir.path(), 3);
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(report.segments, 2);
        assert_eq!(wal.next_seq(), 6);
        // Sequence numbers never go back below what the manifest says is persisted.
        let empty = tempfile::tempdir().unwrap();
        let (wal, _, _) = replay_all(empty.path(), 42);
        assert_eq!(wal.next_seq(), 43);
    }

    #[test]
    fn batches_round_trip_through_ipc() {
        let batch = crate::parse::parse_spans(
            br#"{"start_time":"2026-11-28T08:00:00Z"}"#,
            crate::parse::BodyFormat::Auto,
        )
        .unwrap();
        let decoded = decode_batches(&encode_batch(&batch).unwrap()).unwrap();
        assert_eq!(decoded, vec![batch]);
    }
}
