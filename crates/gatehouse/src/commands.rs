//! The commands behind the CLI.

mod audit;
mod check;
mod copy;
mod demo;
mod digest;
mod explain;
mod identity;
pub mod mock;
pub mod probe;
mod serve;
mod shared;
mod users;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use gatehouse_core::config::{self, Config};
use gatehouse_store::{Store, open_store};

use crate::cli::{Cli, Command, ConfigArg};

pub fn init_tracing(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Reads and validates a config file, printing every error with its line.
pub fn load_config(arg: &ConfigArg) -> anyhow::Result<Config> {
    let (text, name) = match &arg.config {
        Some(p) => (
            std::fs::read_to_string(p).with_context(|| format!("cannot read `{}`", p.display()))?,
            p.display().to_string(),
        ),
        None => (String::new(), "<built-in defaults>".to_owned()),
    };
    parse_config(&text, &name)
}

fn parse_config(text: &str, name: &str) -> anyhow::Result<Config> {
    match config::parse(text) {
        Ok((cfg, warnings)) => {
            for w in warnings {
                match w.line {
                    // Same shape as the errors (`line N: …`), so one grep finds both.
                    Some(l) => eprintln!("warning: {name}: line {l}: {}", w.message),
                    None => eprintln!("warning: {name}: {}", w.message),
                }
            }
            Ok(cfg)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {name}: {e}");
            }
            bail!("`{name}` has {} error(s)", errors.0.len())
        }
    }
}

/// Tells the running gateways of a cluster about a change this command wrote to the store.
/// Best effort: without Redis they read it from the store within a second anyway.
pub async fn announce(cfg: &Config, events: &[gatehouse_server::cluster::Event]) {
    if cfg.cluster.redis_url.is_none() || events.is_empty() {
        return;
    }
    if let Err(e) = gatehouse_server::cluster::publish_once(&cfg.cluster, events).await {
        eprintln!(
            "warning: could not tell the other nodes through redis ({e}); they read the change from the store within a second"
        );
    }
}

/// Revocation events for sessions revoked now (their tokens live at most `refresh_ttl`).
pub fn revoke_events(
    cfg: &Config,
    ids: &[String],
    now: i64,
) -> Vec<gatehouse_server::cluster::Event> {
    let exp = now + i64::try_from(cfg.tokens.refresh_ttl.as_secs()).unwrap_or(i64::MAX / 4);
    ids.iter()
        .map(|id| gatehouse_server::cluster::Event::Revoke {
            id: id.clone(),
            exp,
        })
        .collect()
}

pub async fn store_for(arg: &ConfigArg) -> anyhow::Result<(Config, Arc<dyn Store>)> {
    let cfg = load_config(arg)?;
    let store = open_store(&cfg.store.url)
        .await
        .with_context(|| format!("cannot open the store `{}`", cfg.store.url))?;
    Ok((cfg, store))
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(arg) => serve::serve(&arg).await,
        Command::Demo {
            listen,
            upstream,
            admin_listen,
        } => demo::demo(listen, upstream, admin_listen).await,
        Command::Check(arg) => check::check(&arg),
        Command::Explain {
            config,
            method,
            url,
            headers,
            client_ip,
        } => explain::explain(&config, &method, &url, &headers, client_ip).await,
        Command::User(c) => users::user(c).await,
        Command::Key(c) => users::key(c).await,
        Command::ImportHtpasswd {
            config,
            file,
            roles,
            update,
        } => users::import_htpasswd(&config, &file, &roles, update).await,
        Command::ImportHtdigest {
            config,
            file,
            roles,
        } => digest::import_htdigest(&config, &file, &roles).await,
        Command::Token(c) => users::token(c).await,
        Command::Session(c) => identity::session(c).await,
        Command::Keys(c) => identity::keys(c).await,
        Command::Probe(a) => probe::probe(a).await,
        Command::Audit(c) => audit::audit(c).await,
        Command::Migrate(arg) => migrate(&arg).await,
        Command::Mock(a) => mock::mock(a).await,
        Command::Copy { from, to } => copy::copy(&from, &to).await,
    }
}

/// `gatehouse migrate`: opening a store applies its migrations (under a lock on PostgreSQL,
/// so several nodes starting at once are safe); then list them.
async fn migrate(arg: &ConfigArg) -> anyhow::Result<ExitCode> {
    let cfg = load_config(arg)?;
    let url = &cfg.store.url;
    let applied = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = gatehouse_store::PgStore::open(url)
            .await
            .context("cannot open the store")?;
        let applied = store.applied_migrations().await?;
        store.close().await;
        applied
    } else {
        let store = gatehouse_store::SqliteStore::open(url)
            .await
            .context("cannot open the store")?;
        let applied = store.applied_migrations().await?;
        store.close().await;
        applied
    };
    for m in &applied {
        println!(
            "{:>4}  {:<40} applied {}",
            m.version,
            m.description,
            gatehouse_core::render::rfc3339(m.applied_at)
        );
    }
    println!(
        "store is at schema version {}",
        applied.last().map_or(0, |m| m.version)
    );
    Ok(ExitCode::SUCCESS)
}
