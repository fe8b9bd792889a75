//! The page: the Vite build of `examples/dashboard/web` (`web/dist`), read from disk once at
//! startup and served from memory.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// Where the built page is unless `DASHBOARD_DIST` says otherwise.
pub fn default_dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/web/dist")
}

/// A file of the build.
pub struct Asset {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its `Cache-Control`: Vite's hashed `/assets/*` never change, the rest is revalidated.
    pub cache_control: &'static str,
    /// Its bytes.
    pub body: Bytes,
}

/// The built page, by URL path.
pub struct Site {
    files: HashMap<String, Asset>,
}

/// The page is not built, or could not be read.
#[derive(Debug)]
pub struct SiteError {
    dist: PathBuf,
    cause: std::io::Error,
}

impl fmt::Display for SiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the dashboard page is not built: cannot read {} ({}).\n\
             Build it with `npm ci && npm run build` in examples/dashboard/web \
             (examples/dashboard/run does both), or point DASHBOARD_DIST at a build.",
            self.dist.join("index.html").display(),
            self.cause
        )
    }
}

impl std::error::Error for SiteError {}

impl Site {
    /// Reads every file under `dist` (which must hold `index.html`).
    pub fn load(dist: &Path) -> Result<Site, SiteError> {
        let error = |cause| SiteError {
            dist: dist.to_owned(),
            cause,
        };
        std::fs::metadata(dist.join("index.html")).map_err(error)?;
        let mut files = HashMap::new();
        let mut folders = vec![dist.to_owned()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).map_err(error)? {
                let path = entry.map_err(error)?.path();
                if path.is_dir() {
                    folders.push(path);
                    continue;
                }
                let Ok(relative) = path.strip_prefix(dist) else {
                    continue;
                };
                let url = format!(
                    "/{}",
                    relative
                        .components()
                        .map(|part| part.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/")
                );
                let cache_control = if url.starts_with("/assets/") {
                    "public, max-age=31536000, immutable"
                } else {
                    "no-cache"
                };
                let body = Bytes::from(std::fs::read(&path).map_err(error)?);
                files.insert(
                    url.clone(),
                    Asset {
                        content_type: content_type(&url),
                        cache_control,
                        body,
                    },
                );
            }
        }
        Ok(Site { files })
    }

    /// The file at a URL path (`/` is `index.html`). Only files read at startup are served, so
    /// no request reaches the disk.
    pub fn get(&self, path: &str) -> Option<&Asset> {
        let path = if path == "/" { "/index.html" } else { path };
        self.files.get(path)
    }
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, extension)| extension);
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
