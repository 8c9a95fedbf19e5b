//! Opening the object store that holds the Parquet files and the manifest: a local directory (the
//! embedded default) or an S3 bucket and prefix, with credentials from the standard AWS chain.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage location {0:?} is not understood: use a directory path or s3://bucket/prefix")]
    BadLocation(String),
    #[error("creating the storage directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("opening object store {location}: {source}")]
    Open {
        location: String,
        source: object_store::Error,
    },
}

/// Where Parquet files and the manifest live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl StorageLocation {
    /// `s3://bucket[/prefix]` or a filesystem path.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::BadLocation(text.into()));
            }
            return Ok(StorageLocation::S3 {
                bucket: bucket.into(),
                prefix: prefix.trim_matches('/').into(),
            });
        }
        if text.contains("://") || text.is_empty() {
            return Err(StoreError::BadLocation(text.into()));
        }
        Ok(StorageLocation::Local(PathBuf::from(text)))
    }
}

impl std::fmt::Display for StorageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageLocation::Local(p) => write!(f, "{}", p.display()),
            StorageLocation::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            StorageLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Options for S3-compatible servers.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub allow_http: bool,
}

pub fn open_store(
    location: &StorageLocation,
    s3: &S3Options,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    match location {
        StorageLocation::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.clone(),
                source,
            })?;
            let fs = LocalFileSystem::new_with_prefix(dir).map_err(|source| StoreError::Open {
                location: location.to_string(),
                source,
            })?;
            Ok(Arc::new(fs.with_automatic_cleanup(true)))
        }
        StorageLocation::S3 { bucket, prefix } => {
            // Fail fast and let the flush loop own retrying, so an outage never stalls a flush for minutes.
            let retry = RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
            };
            let client = ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(60))
                .with_allow_http(s3.allow_http);
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .with_client_options(client)
                .with_allow_http(s3.allow_http);
            if let Some(endpoint) = &s3.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            let s3_store = builder.build().map_err(|source| StoreError::Open {
                location: location.to_string(),
                source,
            })?;
            if prefix.is_empty() {
                Ok(Arc::new(s3_store))
            } else {
                Ok(Arc::new(PrefixStore::new(s3_store, prefix.as_str())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            StorageLocation::parse("s3://b/a/b/").unwrap(),
            StorageLocation::S3 {
                bucket: "b".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            StorageLocation::parse("s3://b").unwrap(),
            StorageLocation::S3 {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            StorageLocation::parse("./x").unwrap(),
            StorageLocation::Local("./x".into())
        );
        assert!(StorageLocation::parse("gs://b").is_err());
        assert!(StorageLocation::parse("s3:///x").is_err());
    }
}
