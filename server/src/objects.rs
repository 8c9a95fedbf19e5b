//! Lumen's own JSON objects (dashboards, alert rules, their states and history) in the same object store
//! as the data, under `_lumen/`: read, written whole, listed by prefix. One error type for both users.

use std::sync::Arc;

use axum::http::StatusCode;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, path::Path};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::{ApiError, AppState};

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("{0}")]
    Invalid(String),
    #[error("no {0} with id {1:?}")]
    NotFound(&'static str, String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("{0} in the object store is not valid JSON: {1}")]
    Corrupt(String, serde_json::Error),
}

impl From<ObjectError> for ApiError {
    fn from(e: ObjectError) -> Self {
        let status = match &e {
            ObjectError::Invalid(_) => StatusCode::BAD_REQUEST,
            ObjectError::NotFound(..) => StatusCode::NOT_FOUND,
            // The store is unreachable or refused: worth a retry.
            ObjectError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ObjectError::Corrupt(..) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Parses a request body, naming the path of the field that is wrong (`panels[2].chart: unknown variant …`).
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes)).map_err(
        |e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            }
        },
    )
}

/// Reads a JSON request body of at most `limit` bytes into `T`; a body that does not parse is a 400
/// naming the field (`hint` says what was expected).
pub async fn json_body<T: DeserializeOwned>(
    state: &AppState,
    body: axum::body::Body,
    limit: usize,
    hint: &str,
) -> Result<T, ApiError> {
    let bytes = crate::http::read_body(body, limit, state.config.body_timeout).await?;
    from_json(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body must be {hint}: {e}")))
}

/// An id Lumen made (`d-…`, `a-…`, `default`): lowercase letters, digits and dashes, at most 64. Anything
/// else cannot name an object, so it is answered as not found (and never reaches a store path).
pub fn check_id(id: &str, what: &'static str) -> Result<(), ObjectError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ObjectError::NotFound(what, id.to_string()))
    }
}

#[derive(Clone)]
pub struct JsonObjects {
    store: Arc<dyn ObjectStore>,
}

impl JsonObjects {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        JsonObjects { store }
    }

    pub async fn read<T: DeserializeOwned>(&self, path: &Path) -> Result<Option<T>, ObjectError> {
        match self.store.get(path).await {
            Ok(got) => {
                let bytes = got.bytes().await?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| ObjectError::Corrupt(path.to_string(), e))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn write<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), ObjectError> {
        let bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| ObjectError::Corrupt(path.to_string(), e))?;
        self.store.put(path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    pub async fn delete(&self, path: &Path) -> Result<(), ObjectError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The objects under `prefix`, in path order.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, ObjectError> {
        let mut metas: Vec<ObjectMeta> = self.store.list(Some(prefix)).try_collect().await?;
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(metas)
    }

    /// Every object under `prefix` whose JSON reads; one that does not is logged and skipped, so one bad
    /// object never hides the others. Items are (id from the file name, value).
    pub async fn read_all<T: DeserializeOwned>(
        &self,
        prefix: &Path,
    ) -> Result<Vec<(String, T)>, ObjectError> {
        let mut out = Vec::new();
        for meta in self.list(prefix).await? {
            let Some(id) = meta
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".json"))
                .map(str::to_string)
            else {
                continue;
            };
            match self.read::<T>(&meta.location).await {
                Ok(Some(value)) => out.push((id, value)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "skipping an object of Lumen's"),
            }
        }
        Ok(out)
    }
}
