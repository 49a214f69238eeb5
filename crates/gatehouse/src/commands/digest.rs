//! `gatehouse user digest enable|disable`, `import-htdigest`, and the secrets `user add
//! --digest` stores: what HTTP Digest (RFC 7616) verifies against.
//!
//! Digest needs `HA1 = H(user:realm:password)` per hash algorithm (§3.4.2), which cannot be
//! derived from the argon2 password hash, so it is stored beside it — and only for users
//! who have Digest enabled, since it is a password equivalent. The `userhash`
//! `H(user:realm)` (§3.4.4) is stored with it so the edge can find the user.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use gatehouse_core::digest::{Algorithm, ha1, userhash};
use gatehouse_core::password::verify_password;
use gatehouse_server::clock::now;
use gatehouse_store::{DigestAlgorithm, DigestHa1, NewUser, Store};

use super::shared::{not_found, read_password_stdin, valid_name};
use super::store_for;
use crate::cli::{ConfigArg, DigestCommand};

/// Every algorithm the edge can offer (`[server] digest_algorithms`); a `-sess` variant uses
/// its base algorithm's HA1.
const ALGORITHMS: [(Algorithm, DigestAlgorithm); 2] = [
    (Algorithm::Sha256, DigestAlgorithm::Sha256),
    (Algorithm::Md5, DigestAlgorithm::Md5),
];

/// The Digest secrets of `user` in `realm` for every algorithm.
pub(super) fn secrets(
    user: &str,
    realm: &str,
    password: &str,
) -> Vec<(DigestAlgorithm, DigestHa1)> {
    ALGORITHMS
        .iter()
        .map(|&(alg, stored)| {
            let secret = DigestHa1 {
                ha1: ha1(alg, user, realm, password),
                userhash: userhash(alg, user, realm),
            };
            (stored, secret)
        })
        .collect()
}

pub(super) async fn store_secrets(
    store: &dyn Store,
    user: &str,
    realm: &str,
    secrets: Vec<(DigestAlgorithm, DigestHa1)>,
) -> anyhow::Result<()> {
    for (alg, secret) in secrets {
        store
            .set_digest_ha1(user, realm, alg, Some(secret))
            .await
            .map_err(|e| not_found(e, "user", user))?;
    }
    Ok(())
}

pub async fn user_digest(cmd: DigestCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DigestCommand::Enable {
            config,
            name,
            password_stdin,
        } => {
            if !password_stdin {
                bail!(
                    "give the password on standard input with `--password-stdin` (never as an argument)"
                );
            }
            let pw = read_password_stdin()?;
            let (cfg, store) = store_for(&config).await?;
            let Some(user) = store.get_user(&name).await? else {
                bail!("no user `{name}`");
            };
            let realm = cfg.server.realm;
            let secrets = secrets(&name, &realm, &pw);
            // One password per user: Digest must not open a second door with another one.
            if let Some(hash) = user.password_hash {
                let ok = tokio::task::spawn_blocking(move || verify_password(&hash, pw.as_bytes()))
                    .await?
                    .map_err(|e| {
                        anyhow::anyhow!("the password hash of `{name}` cannot be used: {e}")
                    })?;
                if !ok {
                    bail!("that is not the password of `{name}`; Digest uses the user's password");
                }
            }
            store_secrets(store.as_ref(), &name, &realm, secrets).await?;
            println!("enabled Digest for `{name}` in realm `{realm}` (MD5, SHA-256)");
        }
        DigestCommand::Disable { config, name } => {
            let (cfg, store) = store_for(&config).await?;
            let realm = cfg.server.realm;
            for (_, alg) in ALGORITHMS {
                store
                    .set_digest_ha1(&name, &realm, alg, None)
                    .await
                    .map_err(|e| not_found(e, "user", &name))?;
            }
            println!("disabled Digest for `{name}` in realm `{realm}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of an Apache htdigest file: `user:realm:HA1`, HA1 = MD5(user:realm:password).
struct HtdigestEntry {
    /// 1-based.
    line: usize,
    user: String,
    realm: String,
    /// 32 hex digits (case as in the file; the store lower-cases it).
    ha1: String,
}

/// A password equivalent: never in `Debug`.
impl fmt::Debug for HtdigestEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HtdigestEntry")
            .field("line", &self.line)
            .field("user", &self.user)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// Parses a whole htdigest file, collecting every error as `line N: …`. Blank lines and
/// `#` comments are skipped. Like Apache's `mod_authn_file`, a line has exactly three
/// `:`-separated fields. Errors never echo the HA1.
fn parse_htdigest(text: &str) -> Result<Vec<HtdigestEntry>, Vec<String>> {
    let mut entries: Vec<HtdigestEntry> = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let l = raw.trim_end();
        if l.trim_start().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = l.split(':').collect();
        let [user, realm, ha1] = fields[..] else {
            errors.push(format!(
                "line {line}: expected `user:realm:HA1` (3 fields separated by `:`), found {}",
                fields.len()
            ));
            continue;
        };
        if let Err(e) = valid_name(user) {
            errors.push(format!("line {line}: {e}"));
            continue;
        }
        if realm.is_empty() || realm.chars().any(char::is_control) {
            errors.push(format!(
                "line {line}: the realm of `{user}` is empty or has control characters"
            ));
            continue;
        }
        if ha1.len() != 32 || !ha1.bytes().all(|b| b.is_ascii_hexdigit()) {
            errors.push(format!(
                "line {line}: the hash of `{user}` is not 32 hex digits (an MD5 HA1)"
            ));
            continue;
        }
        if let Some(first) = entries.iter().find(|e| e.user == user && e.realm == realm) {
            errors.push(format!(
                "line {line}: `{user}` in realm `{realm}` already defined on line {}",
                first.line
            ));
            continue;
        }
        entries.push(HtdigestEntry {
            line,
            user: user.to_owned(),
            realm: realm.to_owned(),
            ha1: ha1.to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

pub async fn import_htdigest(
    config: &ConfigArg,
    file: &Path,
    roles: &[String],
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    let entries = match parse_htdigest(&text) {
        Ok(e) => e,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {}: {e}", file.display());
            }
            bail!(
                "`{}` has {} error(s); nothing was imported",
                file.display(),
                errors.len()
            );
        }
    };
    let (cfg, store) = store_for(config).await?;
    let realm = &cfg.server.realm;
    if !cfg.server.digest_algorithms.contains(&Algorithm::Md5) {
        eprintln!(
            "warning: `[server] digest_algorithms` does not offer MD5: imported users cannot use Digest until it does"
        );
    } else if cfg.server.digest_algorithms.len() > 1 {
        eprintln!(
            "warning: SHA-256 is offered first and clients answer the first challenge they support; \
             imported users have only an MD5 HA1, so set `[server] digest_algorithms = [\"MD5\"]`"
        );
    }
    let (mut created, mut updated) = (0, 0);
    for e in entries {
        if e.realm != *realm {
            eprintln!(
                "warning: {}: line {}: realm `{}` is not the configured realm `{realm}`; `{}` can use Digest only where the realm is `{}`",
                file.display(),
                e.line,
                e.realm,
                e.user,
                e.realm
            );
        }
        if store.get_user(&e.user).await?.is_some() {
            updated += 1;
        } else {
            store
                .create_user(
                    NewUser {
                        name: e.user.clone(),
                        password_hash: None,
                        roles: roles.to_vec(),
                        tenant: None,
                    },
                    now(),
                )
                .await?;
            created += 1;
        }
        let secret = DigestHa1 {
            ha1: e.ha1,
            userhash: userhash(Algorithm::Md5, &e.user, &e.realm),
        };
        store
            .set_digest_ha1(&e.user, &e.realm, DigestAlgorithm::Md5, Some(secret))
            .await?;
    }
    println!(
        "imported {} Digest secret(s) (MD5): created {created} user(s), updated {updated}",
        created + updated
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HA1: &str = "939e7578ed9e3c518a452acee763bce9"; // MD5("Mufasa:testrealm@host.com:Circle Of Life")

    #[test]
    fn parses_apache_lines_and_skips_blanks_and_comments() {
        let text = format!(
            "# users\n\nMufasa:testrealm@host.com:{HA1}\r\nbob:api:{}\n",
            HA1.to_uppercase()
        );
        // What Apache's `htdigest` writes: the RFC 2617 §3.5 example's HA1.
        assert_eq!(
            ha1(
                Algorithm::Md5,
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life"
            ),
            HA1
        );
        let e = parse_htdigest(&text).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].line, e[0].user.as_str(), e[0].realm.as_str()),
            (3, "Mufasa", "testrealm@host.com")
        );
        assert_eq!(e[0].ha1, HA1);
        assert_eq!(
            (e[1].line, e[1].user.as_str(), e[1].realm.as_str()),
            (4, "bob", "api")
        );
        // The HA1 is a password equivalent.
        assert!(!format!("{e:?}").contains(HA1));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = format!(
            "ok:api:{HA1}\nnofields\nu:api\nu:api:{HA1}:extra\nu:api:xyz\n:api:{HA1}\nu::{HA1}\nok:api:{HA1}\nok:other:{HA1}\n"
        );
        let errs = parse_htdigest(&text).unwrap_err();
        let lines: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(
            lines,
            [
                "line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 8"
            ],
            "{errs:#?}"
        );
        assert!(errs[3].contains("32 hex digits"), "{errs:#?}");
        assert!(errs[6].contains("already defined on line 1"), "{errs:#?}");
        assert!(errs.iter().all(|e| !e.contains(HA1)), "{errs:#?}");
    }

    #[test]
    fn secrets_cover_md5_and_sha256() {
        let s = secrets("Mufasa", "http-auth@example.org", "Circle of Life");
        let md5 = s.iter().find(|(a, _)| *a == DigestAlgorithm::Md5).unwrap();
        // RFC 7616 §3.9.1's HA1.
        assert_eq!(md5.1.ha1, "3d78807defe7de2157e2b0b6573a855f");
        let sha = s
            .iter()
            .find(|(a, _)| *a == DigestAlgorithm::Sha256)
            .unwrap();
        assert_eq!(sha.1.ha1.len(), 64);
        assert_eq!(
            sha.1.userhash,
            userhash(Algorithm::Sha256, "Mufasa", "http-auth@example.org")
        );
    }
}
