//! What the user and Digest commands share: the password read from standard input, the
//! check of a user name, and the store's "not found" as a message.

use std::io::BufRead as _;

use anyhow::{Context as _, bail};
use gatehouse_store::StoreError;

pub(super) fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        bail!("the password read from standard input is empty");
    }
    Ok(pw)
}

pub(super) fn valid_name(name: &str) -> anyhow::Result<()> {
    gatehouse_server::admin::users::valid_name(name).map_err(anyhow::Error::msg)
}

pub(super) fn not_found(e: StoreError, what: &str, name: &str) -> anyhow::Error {
    match e {
        StoreError::NotFound { .. } => anyhow::anyhow!("no {what} `{name}`"),
        e => e.into(),
    }
}
