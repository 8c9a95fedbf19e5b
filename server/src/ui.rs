//! The web UI's files: built into the binary from `ui/` (rust-embed), or read from `--ui-dir` while
//! working on the UI. `/` is the single page; `/ui/<path>` its scripts, styles and images. The files carry
//! no data, so they are served without a token; every number on the pages comes from the `/v1` API.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::AppState;

#[derive(rust_embed::Embed)]
#[folder = "../ui/"]
#[exclude = "screenshots/*"]
#[exclude = "README.md"]
struct Assets;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// A relative path inside the UI folder, or None for anything that could step out of it.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let candidate = Path::new(path);
    candidate
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| candidate.to_path_buf())
}

/// The page loads only its own files, talks only to this server, and cannot be framed.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn file(state: &AppState, path: &str) -> Response {
    let bytes: Option<Vec<u8>> = match &state.config.ui_dir {
        Some(dir) => match safe_relative(path) {
            Some(rel) => tokio::fs::read(dir.join(rel)).await.ok(),
            None => None,
        },
        None => Assets::get(path).map(|f| f.data.into_owned()),
    };
    match bytes {
        Some(body) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                // The page always asks again so a new binary's UI is picked up; the files are small.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::X_FRAME_OPTIONS, "DENY"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no UI file {path:?}")).into_response(),
    }
}

/// `GET /`: the single page.
pub async fn index(State(state): State<Arc<AppState>>) -> Response {
    file(&state, "index.html").await
}

/// `GET /ui/{*path}`: the page's scripts, styles and images.
pub async fn asset(State(state): State<Arc<AppState>>, UrlPath(path): UrlPath<String>) -> Response {
    file(&state, &path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_ui_folder() {
        assert!(safe_relative("js/app.js").is_some());
        assert!(safe_relative("../Cargo.toml").is_none());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(safe_relative("js/../../x").is_none());
    }

    #[test]
    fn the_page_is_built_in() {
        assert!(
            Assets::get("index.html").is_some(),
            "ui/index.html is embedded"
        );
    }
}
