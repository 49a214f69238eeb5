//! `gatehouse mock`: stubs and contract presets for client tests (see
//! `gatehouse_mock` for the order in which they answer).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use gatehouse_core::Scheme;
use gatehouse_mock::{self as mock, Mock, MockError, MockOptions, PresetSpec};

#[derive(Debug, Args)]
pub struct MockArgs {
    /// A JSON stub file: simple stubs (`{"method", "url", "status", "headers", "body"}`, one
    /// or an array) or WireMock mappings. Reloaded when it changes.
    #[arg(long)]
    pub stubs: Option<PathBuf>,
    /// Answer as `gatehouse serve` does in one situation of the contract:
    /// `NAME[=ARG][@PATH]`, e.g. `expired-token`, `insufficient-scope=posts:write@/api/**`.
    /// Repeatable; the first whose PATH matches answers. Stubs are tried first.
    #[arg(long = "preset", value_name = "NAME")]
    pub presets: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", conflicts_with = "port")]
    pub listen: SocketAddr,
    /// Shorthand for `--listen 127.0.0.1:N`.
    #[arg(long)]
    pub port: Option<u16>,
    /// The `realm` of the presets' challenges.
    #[arg(long, default_value = "api")]
    pub realm: String,
    /// Accepted schemes, in challenge order: bearer, basic, api_key, digest; comma-separated
    /// or repeated.
    #[arg(long = "scheme", value_delimiter = ',', default_value = "bearer")]
    pub schemes: Vec<String>,
}

/// Exit status for a bad stub file or a bad argument value.
const EXIT_BAD_INPUT: u8 = 2;

pub async fn mock(a: MockArgs) -> anyhow::Result<ExitCode> {
    let mut presets = Vec::with_capacity(a.presets.len());
    for p in &a.presets {
        match PresetSpec::parse(p) {
            Ok(p) => presets.push(p),
            Err(e) => {
                eprintln!("error: --preset `{p}`: {e}");
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
        }
    }
    let mut schemes = Vec::with_capacity(a.schemes.len());
    for s in &a.schemes {
        match Scheme::from_name(s.trim()) {
            Some(Scheme::Session) | None => {
                eprintln!("error: --scheme `{s}`: use bearer, basic, api_key or digest");
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
            Some(s) => schemes.push(s),
        }
    }
    if a.stubs.is_none() && presets.is_empty() {
        bail!("`mock` needs `--stubs FILE` or at least one `--preset NAME`");
    }
    let opts = MockOptions {
        stubs: a.stubs,
        presets,
        realm: a.realm,
        schemes,
        ..MockOptions::default()
    };
    let m = match Mock::new(opts) {
        Ok(m) => m,
        Err(MockError::Stubs { path, errors }) => {
            // Same shape as config errors: one `file: line N: …` per problem.
            for e in &errors {
                eprintln!("error: {path}: {e}");
            }
            eprintln!("error: `{path}` has {} error(s)", errors.len());
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
        Err(e @ MockError::Read { .. }) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let addr = match a.port {
        Some(p) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p),
        None => a.listen,
    };
    let listener = gatehouse_server::bind(addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        stubs = m.stubs().len(),
        journal = mock::JOURNAL_PATH,
        "gatehouse mock listening"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(mock::serve(m, listener, stop_rx));
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    let _ = stop_tx.send(true);
    server.await.context("mock server task failed")??;
    Ok(ExitCode::SUCCESS)
}
