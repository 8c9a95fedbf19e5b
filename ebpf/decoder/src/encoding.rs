//! Incremental `Content-Encoding` decoding (identity, gzip, deflate in its zlib and raw forms, br, zstd).
//! Bytes go in as they arrive and whatever decompresses comes out at once, so a compressed event stream
//! still yields its events when they are sent. Output is capped: a decompression bomb stops at the cap.

use std::io::Write;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unsupported content-encoding {0:?}")]
    Unsupported(String),
    #[error("corrupt {encoding} data: {message}")]
    Corrupt {
        encoding: &'static str,
        message: String,
    },
}

/// The encodings named by a `Content-Encoding` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// `deflate`: zlib-wrapped per RFC 9110, raw deflate in the wild; told apart by the first bytes.
    Deflate,
    Brotli,
    Zstd,
}

impl Encoding {
    /// Parses one `Content-Encoding` value. Stacked encodings (`gzip, br`) are rare and unsupported.
    pub fn parse(header: Option<&str>) -> Result<Encoding, DecodeError> {
        let Some(value) = header else {
            return Ok(Encoding::Identity);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Encoding::Identity),
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            "deflate" => Ok(Encoding::Deflate),
            "br" => Ok(Encoding::Brotli),
            "zstd" => Ok(Encoding::Zstd),
            other => Err(DecodeError::Unsupported(other.to_string())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }
}

enum Inner {
    Identity,
    /// Deflate whose flavour is not known until two bytes have arrived.
    DeflatePending(Vec<u8>),
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    RawDeflate(flate2::write::DeflateDecoder<Vec<u8>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Vec<u8>>>),
    Failed,
}

/// Decompresses one body incrementally.
pub struct BodyDecoder {
    encoding: Encoding,
    inner: Inner,
    produced: usize,
    cap: usize,
    capped: bool,
}

impl BodyDecoder {
    /// `cap` bounds the decompressed bytes returned over the body's lifetime.
    pub fn new(encoding: Encoding, cap: usize) -> BodyDecoder {
        let inner = match encoding {
            Encoding::Identity => Inner::Identity,
            Encoding::Gzip => Inner::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            Encoding::Deflate => Inner::DeflatePending(Vec::new()),
            Encoding::Brotli => {
                Inner::Brotli(Box::new(brotli::DecompressorWriter::new(Vec::new(), 4096)))
            }
            Encoding::Zstd => match zstd::stream::write::Decoder::new(Vec::new()) {
                Ok(decoder) => Inner::Zstd(Box::new(decoder)),
                Err(_) => Inner::Failed,
            },
        };
        BodyDecoder {
            encoding,
            inner,
            produced: 0,
            cap,
            capped: false,
        }
    }

    /// True once the output reached the cap; later output is dropped.
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// Feeds compressed bytes; appends what they decompress to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        // Small steps bound the memory one step can inflate to (deflate's ratio tops out near 1:1032).
        for step in input.chunks(4096) {
            self.feed_step(step, out)?;
        }
        Ok(())
    }

    fn feed_step(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        if self.capped || input.is_empty() {
            return Ok(());
        }
        let encoding = self.encoding.name();
        let corrupt = |e: std::io::Error| DecodeError::Corrupt {
            encoding,
            message: e.to_string(),
        };
        let produced = match &mut self.inner {
            Inner::Identity => {
                out.extend_from_slice(input);
                input.len()
            }
            Inner::Failed => {
                return Err(DecodeError::Corrupt {
                    encoding,
                    message: "decoder failed earlier".into(),
                });
            }
            Inner::DeflatePending(pending) => {
                pending.extend_from_slice(input);
                if pending.len() < 2 {
                    return Ok(());
                }
                let pending = std::mem::take(pending);
                let (cmf, flg) = (pending[0], pending[1]);
                // RFC 1950: CM = 8 in the low nibble and the 16-bit header is a multiple of 31.
                let zlib = cmf & 0x0f == 8 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0;
                self.inner = if zlib {
                    Inner::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
                } else {
                    Inner::RawDeflate(flate2::write::DeflateDecoder::new(Vec::new()))
                };
                return self.feed_step(&pending, out);
            }
            Inner::Gzip(d) => write_and_take(d, input, out, |d| d.get_mut()).map_err(corrupt)?,
            Inner::Zlib(d) => write_and_take(d, input, out, |d| d.get_mut()).map_err(corrupt)?,
            Inner::RawDeflate(d) => {
                write_and_take(d, input, out, |d| d.get_mut()).map_err(corrupt)?
            }
            Inner::Brotli(d) => {
                write_and_take(d.as_mut(), input, out, |d| d.get_mut()).map_err(corrupt)?
            }
            Inner::Zstd(d) => {
                write_and_take(d.as_mut(), input, out, |d| d.get_mut()).map_err(corrupt)?
            }
        };
        self.produced += produced;
        if self.produced > self.cap {
            let excess = self.produced - self.cap;
            out.truncate(out.len().saturating_sub(excess));
            self.capped = true;
        }
        Ok(())
    }
}

fn write_and_take<W: Write>(
    writer: &mut W,
    input: &[u8],
    out: &mut Vec<u8>,
    sink: impl Fn(&mut W) -> &mut Vec<u8>,
) -> std::io::Result<usize> {
    writer.write_all(input)?;
    // Flush pushes out everything decodable so far (a sync-flushed stream yields each event).
    writer.flush()?;
    let buffer = sink(writer);
    let n = buffer.len();
    out.append(buffer);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder, write::ZlibEncoder};

    fn decode_in_pieces(encoding: Encoding, data: &[u8], piece: usize) -> Vec<u8> {
        let mut decoder = BodyDecoder::new(encoding, 1 << 20);
        let mut out = Vec::new();
        for chunk in data.chunks(piece) {
            decoder.feed(chunk, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn every_encoding_decodes_byte_by_byte() {
        let text = b"data: {\"hello\":\"world\"}\n\n".repeat(20);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = ZlibEncoder::new(Vec::new(), Compression::default());
        zl.write_all(&text).unwrap();
        let zl = zl.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&text).unwrap();
        let raw = raw.finish().unwrap();
        let zs = zstd::encode_all(&text[..], 3).unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&text).unwrap();
        }
        for (encoding, data) in [
            (Encoding::Gzip, &gz),
            (Encoding::Deflate, &zl),
            (Encoding::Deflate, &raw),
            (Encoding::Zstd, &zs),
            (Encoding::Brotli, &br),
        ] {
            for piece in [1, 7, 4096] {
                assert_eq!(
                    decode_in_pieces(encoding, data, piece),
                    text,
                    "{encoding:?}"
                );
            }
        }
    }

    #[test]
    fn sync_flushed_gzip_yields_each_part_when_it_arrives() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(b"first event\n\n").unwrap();
        gz.flush().unwrap();
        let first_len = gz.get_ref().len();
        gz.write_all(b"second\n\n").unwrap();
        let all = gz.finish().unwrap();
        let mut decoder = BodyDecoder::new(Encoding::Gzip, 1 << 20);
        let mut out = Vec::new();
        decoder.feed(&all[..first_len], &mut out).unwrap();
        assert_eq!(out, b"first event\n\n");
        decoder.feed(&all[first_len..], &mut out).unwrap();
        assert_eq!(out, b"first event\n\nsecond\n\n");
    }

    #[test]
    fn output_is_capped_and_garbage_is_an_error() {
        let zeros = vec![0u8; 1 << 20];
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&zeros).unwrap();
        let bomb = gz.finish().unwrap();
        let mut decoder = BodyDecoder::new(Encoding::Gzip, 1000);
        let mut out = Vec::new();
        decoder.feed(&bomb, &mut out).unwrap();
        assert_eq!(out.len(), 1000);
        assert!(decoder.capped());

        let mut decoder = BodyDecoder::new(Encoding::Gzip, 1000);
        assert!(decoder.feed(b"this is not gzip at all", &mut out).is_err());
        assert_eq!(
            Encoding::parse(Some("compress")),
            Err(DecodeError::Unsupported("compress".into()))
        );
    }
}
