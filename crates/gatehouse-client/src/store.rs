//! Where the client keeps its access and refresh tokens.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An access token and, optionally, the refresh token that renews it. `Debug` hides both.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl Tokens {
    pub fn new(access_token: impl Into<String>, refresh_token: Option<String>) -> Self {
        Self {
            access_token: access_token.into(),
            refresh_token,
        }
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not a token file: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("token store lock poisoned")]
    Poisoned,
}

/// Persists tokens between requests (and, for files, between runs). Called rarely: at
/// client start, after a sign-in or refresh, and when the session ends.
pub trait TokenStore: Send + Sync {
    fn load(&self) -> Result<Option<Tokens>, StoreError>;
    fn save(&self, tokens: &Tokens) -> Result<(), StoreError>;
    fn clear(&self) -> Result<(), StoreError>;
}

/// Tokens in memory only.
#[derive(Debug, Default)]
pub struct MemoryTokenStore(Mutex<Option<Tokens>>);

impl MemoryTokenStore {
    pub fn new(tokens: Option<Tokens>) -> Self {
        Self(Mutex::new(tokens))
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> Result<Option<Tokens>, StoreError> {
        Ok(self.0.lock().map_err(|_| StoreError::Poisoned)?.clone())
    }
    fn save(&self, tokens: &Tokens) -> Result<(), StoreError> {
        *self.0.lock().map_err(|_| StoreError::Poisoned)? = Some(tokens.clone());
        Ok(())
    }
    fn clear(&self) -> Result<(), StoreError> {
        *self.0.lock().map_err(|_| StoreError::Poisoned)? = None;
        Ok(())
    }
}

/// Tokens in a JSON file, replaced atomically (write a sibling, then rename) and readable
/// by the owner only on Unix.
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    path: PathBuf,
}

impl FileTokenStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl TokenStore for FileTokenStore {
    fn load(&self) -> Result<Option<Tokens>, StoreError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| StoreError::Format {
                path: self.path.clone(),
                source,
            })
    }

    fn save(&self, tokens: &Tokens) -> Result<(), StoreError> {
        let write = |source| StoreError::Write {
            path: self.path.clone(),
            source,
        };
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let json =
            serde_json::to_vec_pretty(tokens).map_err(|e| write(std::io::Error::other(e)))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        {
            use std::io::Write as _;
            let mut f = opts.open(&tmp).map_err(write)?;
            f.write_all(&json).map_err(write)?;
            f.sync_all().map_err(write)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(write)
    }

    fn clear(&self) -> Result<(), StoreError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Write {
                path: self.path.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let t = Tokens::new("eyJ.secret", Some("ghr_secret".into()));
        let d = format!("{t:?}");
        assert!(!d.contains("secret"), "{d}");
    }

    #[test]
    fn memory_store_round_trips() {
        let s = MemoryTokenStore::default();
        assert_eq!(s.load().unwrap(), None);
        let t = Tokens::new("a", Some("r".into()));
        s.save(&t).unwrap();
        assert_eq!(s.load().unwrap(), Some(t));
        s.clear().unwrap();
        assert_eq!(s.load().unwrap(), None);
    }

    #[test]
    fn file_store_round_trips_privately() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileTokenStore::new(dir.path().join("tokens.json"));
        assert_eq!(s.load().unwrap(), None);
        let t = Tokens::new("a", None);
        s.save(&t).unwrap();
        assert_eq!(FileTokenStore::new(s.path()).load().unwrap(), Some(t));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(s.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        s.clear().unwrap();
        s.clear().unwrap();
        assert_eq!(s.load().unwrap(), None);
        std::fs::write(s.path(), "not json").unwrap();
        assert!(matches!(s.load(), Err(StoreError::Format { .. })));
    }
}
