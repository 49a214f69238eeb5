//! API keys for administrators, shared by the admin API and the CLI (`gatehouse key …`):
//! creating one (shown once) and revoking one by id, by prefix, or by the full key as
//! printed — a person holding a leaked key pastes the key.

use gatehouse_core::apikey::{generate_api_key, hash_api_key, parse_api_key};
use gatehouse_core::secret::SecretString;
use gatehouse_store::{ApiKey, NewApiKey, Store, StoreError};

/// What a new key is for.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    pub user: String,
    pub scopes: Vec<String>,
    pub read_only: bool,
    /// Unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
    pub label: Option<String>,
}

/// Why a key could not be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no user `{0}`")]
    NoUser(String),
    #[error("no API key matches")]
    NoKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a key for `spec.user`; returns the stored record and the key, to show once.
pub async fn create(
    store: &dyn Store,
    spec: KeySpec,
    now: i64,
) -> Result<(ApiKey, SecretString), KeyError> {
    if store.get_user(&spec.user).await?.is_none() {
        return Err(KeyError::NoUser(spec.user));
    }
    let generated = generate_api_key(&crate::random::random_bytes::<37>());
    let key = store
        .create_api_key(
            NewApiKey {
                id: format!("key_{}", generated.prefix),
                prefix: generated.prefix.clone(),
                hash: generated.hash,
                user: spec.user,
                scopes: spec.scopes,
                read_only: spec.read_only,
                expires_at: spec.expires_at,
                label: spec.label,
            },
            now,
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => KeyError::NoKey,
            e => KeyError::Store(e),
        })?;
    Ok((key, generated.display))
}

/// Revokes the key named by `given`: the full key (`gh_<prefix>_<secret>`: its prefix finds
/// the record and its hash must match, compared in constant time — a key that merely looks
/// like one of ours revokes nothing), else an id or a prefix. Returns the key as stored
/// before the revocation; revoking a revoked key keeps its first `revoked_at`.
pub async fn revoke(store: &dyn Store, given: &str, now: i64) -> Result<ApiKey, KeyError> {
    let given = given.trim();
    let key = match parse_api_key(given) {
        Some((prefix, _)) => {
            let key = store.find_api_key(prefix).await?.ok_or(KeyError::NoKey)?;
            if !key.hash_matches(&hash_api_key(given)) {
                return Err(KeyError::NoKey);
            }
            key
        }
        // An id (`key_<prefix>` as created here; found by its prefix, else by a scan of
        // the keys for ids of other forms), else a prefix.
        None => {
            let by_prefix_of_id = match given.strip_prefix("key_") {
                Some(p) => store.find_api_key(p).await?.filter(|k| k.id == given),
                None => None,
            };
            let by_id = match by_prefix_of_id {
                Some(k) => Some(k),
                None => store
                    .list_api_keys(None)
                    .await?
                    .into_iter()
                    .find(|k| k.id == given),
            };
            match by_id {
                Some(k) => k,
                None => store.find_api_key(given).await?.ok_or(KeyError::NoKey)?,
            }
        }
    };
    if !store.revoke_api_key(&key.id, now).await? {
        return Err(KeyError::NoKey);
    }
    Ok(key)
}
