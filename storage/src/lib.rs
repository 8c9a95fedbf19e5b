//! Lumen storage: the object-store layout (`paths`), Parquet writing (`writer`), the manifest of files
//! (`manifest`), opening local or S3 stores (`store`) and the flush loop that moves hot batches into
//! Parquet (`persist`).

pub mod manifest;
pub mod paths;
pub mod persist;
pub mod store;
pub mod writer;

pub use manifest::{FileMeta, Manifest, ManifestSnapshot};
pub use persist::{FlushPolicy, PersistStats, Persister};
pub use store::{S3Options, StorageLocation, open_store};
pub use writer::WriterConfig;
