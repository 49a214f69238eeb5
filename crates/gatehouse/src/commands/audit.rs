//! `gatehouse audit tail|query`: reads the audit trail from the store.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use gatehouse_server::observe::record_json;
use gatehouse_store::{AuditEntry, AuditQuery};

use super::store_for;
use crate::cli::AuditCommand;

/// `--since`: a duration back from `now` or an RFC 3339 time, as unix seconds.
pub fn parse_since(s: &str, now: i64) -> anyhow::Result<i64> {
    gatehouse_server::admin::api::parse_time(s, now).map_err(|e| anyhow::anyhow!("--since: {e}"))
}

fn print(entries: &[AuditEntry], json: bool) {
    for e in entries {
        let r = &e.record;
        if json {
            println!("{}", record_json(r));
            continue;
        }
        let error = match (&r.error, r.hidden) {
            (Some(e), true) => format!("{e} (hidden)"),
            (Some(e), false) => e.clone(),
            (None, _) => "-".to_owned(),
        };
        println!(
            "{} {:<4} {:<16} {:<7} {:<28} {:<15} {:<12} {:<32} {}",
            gatehouse_core::render::rfc3339(r.time),
            r.status,
            r.route,
            r.method,
            r.path,
            r.client_ip.as_deref().unwrap_or("-"),
            r.principal.as_deref().unwrap_or("-"),
            error,
            r.detail
        );
    }
}

pub async fn audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Tail {
            config,
            lines,
            follow,
            json,
        } => {
            let (_, store) = store_for(&config).await?;
            let mut q = AuditQuery {
                limit: lines,
                ..AuditQuery::default()
            };
            loop {
                let got = store.query_audit(q.clone()).await?;
                print(&got, json);
                if !follow {
                    break;
                }
                if let Some(last) = got.last() {
                    q.after_seq = Some(last.seq);
                } else if q.after_seq.is_none() {
                    q.after_seq = Some(0);
                }
                q.limit = 10_000;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        AuditCommand::Query {
            config,
            since,
            status,
            reason,
            user,
            limit,
            json,
        } => {
            if limit == 0 {
                bail!("`--limit` must be at least 1");
            }
            let since = since
                .map(|s| parse_since(&s, gatehouse_server::clock::now()))
                .transpose()?;
            let (_, store) = store_for(&config).await?;
            let got = store
                .query_audit(AuditQuery {
                    since,
                    after_seq: None,
                    status,
                    reason,
                    user,
                    limit,
                    ..AuditQuery::default()
                })
                .await?;
            print(&got, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_rfc3339() {
        let now = 1_700_000_000;
        assert_eq!(parse_since("15m", now).ok(), Some(now - 900));
        assert_eq!(parse_since("1d", now).ok(), Some(now - 86_400));
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", now).ok(),
            Some(1_700_000_000)
        );
        assert!(parse_since("yesterday", now).is_err());
    }
}
