//! Events on `<key_prefix>:events`: what one node (or the CLI) changed and every node must
//! apply at once. JSON, one object per message, tagged by `t`.

use std::time::Duration;

use gatehouse_core::config::ClusterConfig;
use serde::{Deserialize, Serialize};

use super::ClusterError;

/// Which limiter a lock belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Password failures from a client IP.
    Ip,
    /// Password failures on an account.
    Account,
    /// Failed token / API key / session verifications from a client IP (the verification
    /// budget).
    Tokens,
}

impl LockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Account => "account",
            Self::Tokens => "tokens",
        }
    }
}

/// A change to a local account that running gateways cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UserChange {
    Suspended {
        at: i64,
        reason: String,
    },
    Active,
    Deleted,
    /// The account's attributes after a `user set` / `user unset` (issue 13).
    Attributes {
        attributes: gatehouse_core::attributes::Attributes,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// A token id or session id was revoked (already in the store); `exp` is when the
    /// token would have expired anyway (unix seconds).
    Revoke { id: String, exp: i64 },
    /// A client IP or (hashed) account is locked until `until` (published by the failure
    /// script itself).
    Lock {
        kind: LockKind,
        key: String,
        until: i64,
    },
    /// A local account was suspended, unsuspended or deleted (already in the store).
    User { name: String, change: UserChange },
}

pub(super) fn channel(prefix: &str) -> String {
    format!("{prefix}:events")
}

/// The event in a pub/sub push (`[channel, payload]`); anything else is ignored.
pub(super) fn decode(data: &[redis::Value]) -> Option<Event> {
    let payload = match data.last()? {
        redis::Value::BulkString(b) => b.as_slice(),
        redis::Value::SimpleString(s) => s.as_bytes(),
        _ => return None,
    };
    match serde_json::from_slice(payload) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %e, "ignored a malformed cluster event");
            None
        }
    }
}

/// Publishes `events` once, for a process that is not a gateway (the CLI after `session
/// revoke`, `user suspend` …): connects, publishes, closes, all within a few timeouts.
pub async fn publish_once(config: &ClusterConfig, events: &[Event]) -> Result<(), ClusterError> {
    let Some(url) = &config.redis_url else {
        return Ok(());
    };
    let client = super::client(url)?;
    let channel = channel(&config.key_prefix);
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout));
    let work = async {
        let mut c = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        for e in events {
            let payload = serde_json::to_string(e).unwrap_or_default();
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(payload)
                .query_async::<i64>(&mut c)
                .await?;
        }
        Ok::<(), redis::RedisError>(())
    };
    let bound =
        config.timeout * 4 + Duration::from_millis(u64::try_from(events.len()).unwrap_or(0) * 10);
    match tokio::time::timeout(bound, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ClusterError::Redis(e.to_string())),
        Err(_) => Err(ClusterError::Redis("timed out".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_match_what_the_failure_script_publishes() {
        for e in [
            Event::Revoke {
                id: "s_abc".into(),
                exp: 1_700_000_000,
            },
            Event::User {
                name: "carol".into(),
                change: UserChange::Suspended {
                    at: 1,
                    reason: "tos".into(),
                },
            },
            Event::User {
                name: "carol".into(),
                change: UserChange::Deleted,
            },
        ] {
            let text = serde_json::to_string(&e).unwrap_or_default();
            let data = [
                redis::Value::BulkString(b"gh:events".to_vec()),
                redis::Value::BulkString(text.into_bytes()),
            ];
            assert_eq!(decode(&data), Some(e));
        }
        // cjson's rendering of the script's table.
        let lua = br#"{"key":"10.0.0.1","until":1700000120,"t":"lock","kind":"ip"}"#;
        assert_eq!(
            decode(&[redis::Value::BulkString(lua.to_vec())]),
            Some(Event::Lock {
                kind: LockKind::Ip,
                key: "10.0.0.1".into(),
                until: 1_700_000_120
            })
        );
        assert_eq!(decode(&[redis::Value::BulkString(b"{".to_vec())]), None);
    }
}
