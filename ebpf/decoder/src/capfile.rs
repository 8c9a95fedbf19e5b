//! The `.cap` capture format: a connection's chunks as the sensor would report them, for golden
//! fixtures and debugging. Text framing around raw bytes:
//!
//! ```text
//! lumen-cap 1
//! @ key value            metadata (server_address, server_port, note, ...)
//! > TS LEN\n<LEN bytes>\n   client → server chunk at TS (Unix ns)
//! < TS LEN\n<LEN bytes>\n   server → client chunk
//! >gap TS LEN\n          LEN bytes lost client → server
//! <gap TS LEN\n          LEN bytes lost server → client
//! ```

use std::collections::BTreeMap;

use thiserror::Error;

use crate::{Connection, Direction};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CapError {
    #[error("not a lumen-cap file (first line must be `lumen-cap 1`)")]
    Magic,
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
}

/// One record of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Data(Direction, i64, Vec<u8>),
    Gap(Direction, i64, u64),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    pub meta: BTreeMap<String, String>,
    pub records: Vec<Record>,
}

impl Capture {
    pub fn parse(bytes: &[u8]) -> Result<Capture, CapError> {
        let mut capture = Capture::default();
        let mut pos = 0;
        let mut line_no = 0;
        let mut next_line = |pos: &mut usize| -> Option<(usize, String)> {
            if *pos >= bytes.len() {
                return None;
            }
            let end = memchr::memchr(b'\n', &bytes[*pos..]).map_or(bytes.len(), |i| *pos + i);
            let line = String::from_utf8_lossy(&bytes[*pos..end]).into_owned();
            *pos = (end + 1).min(bytes.len());
            line_no += 1;
            Some((line_no, line))
        };
        match next_line(&mut pos) {
            Some((_, line)) if line.trim_end() == "lumen-cap 1" => {}
            _ => return Err(CapError::Magic),
        }
        while let Some((line_no, line)) = next_line(&mut pos) {
            let syntax = |message: &str| CapError::Syntax {
                line: line_no,
                message: format!("{message}: {line:?}"),
            };
            if line.is_empty() {
                continue;
            }
            if let Some(meta) = line.strip_prefix("@ ") {
                let (key, value) = meta.split_once(' ').unwrap_or((meta, ""));
                capture.meta.insert(key.to_string(), value.to_string());
                continue;
            }
            let mut fields = line.split(' ');
            let tag = fields.next().unwrap_or_default();
            let ts: i64 = fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| syntax("bad timestamp"))?;
            let len: u64 = fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| syntax("bad length"))?;
            let direction = match tag {
                ">" | ">gap" => Direction::ToServer,
                "<" | "<gap" => Direction::ToClient,
                _ => return Err(syntax("unknown record tag")),
            };
            if tag.ends_with("gap") {
                capture.records.push(Record::Gap(direction, ts, len));
                continue;
            }
            let end = usize::try_from(len)
                .ok()
                .and_then(|len| pos.checked_add(len))
                .filter(|end| *end <= bytes.len())
                .ok_or_else(|| syntax("payload runs past the end of the file"))?;
            capture
                .records
                .push(Record::Data(direction, ts, bytes[pos..end].to_vec()));
            pos = end;
            if bytes.get(pos) == Some(&b'\n') {
                pos += 1;
            }
        }
        Ok(capture)
    }

    /// Feeds every record into a connection (without closing it).
    pub fn replay(&self, connection: &mut Connection) {
        for record in &self.records {
            match record {
                Record::Data(direction, ts, bytes) => connection.data(*direction, *ts, bytes),
                Record::Gap(direction, ts, len) => connection.gap(*direction, *ts, *len),
            }
        }
    }

    /// Timestamp of the last record.
    pub fn last_ts(&self) -> i64 {
        self.records
            .iter()
            .map(|r| match r {
                Record::Data(_, ts, _) | Record::Gap(_, ts, _) => *ts,
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_rejects_bad_files() {
        let text = b"lumen-cap 1\n@ server_port 443\n> 10 5\nhello\n< 20 2\nhi\n<gap 30 100\n";
        let capture = Capture::parse(text).unwrap();
        assert_eq!(capture.meta["server_port"], "443");
        assert_eq!(
            capture.records,
            vec![
                Record::Data(Direction::ToServer, 10, b"hello".to_vec()),
                Record::Data(Direction::ToClient, 20, b"hi".to_vec()),
                Record::Gap(Direction::ToClient, 30, 100),
            ]
        );
        assert_eq!(Capture::parse(b"nope"), Err(CapError::Magic));
        assert!(matches!(
            Capture::parse(b"lumen-cap 1\n> 1 99\nshort\n"),
            Err(CapError::Syntax { line: 2, .. })
        ));
    }
}
