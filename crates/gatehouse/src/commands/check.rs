//! `gatehouse check --config FILE`: validates the file (every error with its line), then
//! what it names that can be checked without serving: the country database, and the page
//! templates (each rendered once with sample data).

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use gatehouse_core::config::Config;

use super::load_config;
use crate::cli::ConfigArg;

pub fn check(arg: &ConfigArg) -> anyhow::Result<ExitCode> {
    let Some(path) = &arg.config else {
        bail!("`check` needs `--config FILE`");
    };
    let cfg = load_config(arg)?;
    let errors = files(&cfg);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        bail!(
            "`{}` has {} error(s)",
            Path::new(path).display(),
            errors.len()
        );
    }
    println!(
        "{}: ok ({} route(s), {} issuer(s), store `{}`, {})",
        Path::new(path).display(),
        cfg.routes.len(),
        cfg.issuers.len(),
        cfg.store.url,
        match &cfg.upstream {
            Some(u) => format!("upstream `{}`", u.url),
            None => "forward-auth only".to_owned(),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The files the config names, each opened as the gateway would: one message per problem,
/// with the line of the key that names the file.
fn files(cfg: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(g) = &cfg.geoip
        && let Err(e) = gatehouse_server::geoip::GeoIp::open(g)
    {
        errors.push(format!("line {}: `geoip.database`: {e}", g.line));
    }
    if let Some(p) = &cfg.pages {
        match gatehouse_server::pages::Branded::load(p) {
            Ok(b) => errors.extend(b.check(&p.dir)),
            Err(e) => errors.extend(e),
        }
    }
    errors
}
