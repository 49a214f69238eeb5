//! `gatehouse user …`, `key …`, `import-htpasswd`, `token issue`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use gatehouse_core::config::parse_duration;
use gatehouse_core::htpasswd::parse_htpasswd;
use gatehouse_core::password::hash_password;
use gatehouse_server::admin::keys::{self as admin_keys, KeyError, KeySpec};
use gatehouse_server::clock::now;
use gatehouse_server::cluster::{Event, UserChange};
use gatehouse_server::random::random_bytes;
use gatehouse_store::{AccountStatus, NewUser, StoreError};

use super::shared::{not_found, read_password_stdin, valid_name};
use super::store_for;
use crate::cli::{KeyCommand, TokenCommand, UserCommand};

fn hash(pw: &str) -> anyhow::Result<String> {
    hash_password(pw.as_bytes(), &random_bytes::<16>()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn fmt_time(t: i64) -> String {
    gatehouse_core::render::rfc3339(t)
}

pub async fn user(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            config,
            name,
            roles,
            tenant,
            password_stdin,
            digest,
        } => {
            valid_name(&name)?;
            if !password_stdin {
                bail!(
                    "give the password on standard input with `--password-stdin` (never as an argument)"
                );
            }
            let pw = read_password_stdin()?;
            let (cfg, store) = store_for(&config).await?;
            // Computed now, stored once the user exists (the password moves to the hasher).
            let secrets = digest.then(|| super::digest::secrets(&name, &cfg.server.realm, &pw));
            let password_hash = tokio::task::spawn_blocking(move || hash(&pw)).await??;
            let u = store
                .create_user(
                    NewUser {
                        name: name.clone(),
                        password_hash: Some(password_hash),
                        roles,
                        tenant,
                    },
                    now(),
                )
                .await
                .map_err(|e| match e {
                    StoreError::Conflict { .. } => anyhow::anyhow!("user `{name}` already exists"),
                    e => e.into(),
                })?;
            println!(
                "created user `{}` (roles: [{}], tenant: {})",
                u.name,
                u.roles.join(", "),
                u.tenant.as_deref().unwrap_or("-")
            );
            if let Some(secrets) = secrets {
                super::digest::store_secrets(store.as_ref(), &name, &cfg.server.realm, secrets)
                    .await?;
                println!(
                    "enabled Digest for `{name}` in realm `{}` (MD5, SHA-256)",
                    cfg.server.realm
                );
            }
        }
        UserCommand::Digest(c) => return super::digest::user_digest(c).await,
        UserCommand::Suspend {
            config,
            name,
            reason,
        } => {
            let (cfg, store) = store_for(&config).await?;
            let t = now();
            store
                .suspend_user(&name, &reason, t)
                .await
                .map_err(|e| not_found(e, "user", &name))?;
            // A suspended account keeps no session: refresh tokens die, and access tokens are
            // answered `token_revoked` (their holder is refused anyway: row 13 or row 10).
            let revoked = store
                .revoke_user_sessions(&name, "account suspended", t)
                .await?;
            println!(
                "suspended `{name}`: {reason} ({} session(s) revoked)",
                revoked.len()
            );
            let mut events = vec![Event::User {
                name: name.clone(),
                change: UserChange::Suspended { at: t, reason },
            }];
            events.extend(super::revoke_events(&cfg, &revoked, t));
            super::announce(&cfg, &events).await;
        }
        UserCommand::Unsuspend { config, name } => {
            let (cfg, store) = store_for(&config).await?;
            store
                .unsuspend_user(&name)
                .await
                .map_err(|e| not_found(e, "user", &name))?;
            println!("unsuspended `{name}`");
            let change = UserChange::Active;
            super::announce(&cfg, &[Event::User { name, change }]).await;
        }
        UserCommand::Set {
            config,
            name,
            attributes,
        } => {
            let set = attributes
                .iter()
                .map(|a| gatehouse_core::attributes::parse_assignment(a))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?;
            attributes_changed(&config, &name, set, Vec::new()).await?;
        }
        UserCommand::Unset { config, name, keys } => {
            attributes_changed(&config, &name, Default::default(), keys).await?;
        }
        UserCommand::Mfa(c) => return super::identity::mfa(c).await,
        UserCommand::Delete { config, name } => {
            let (cfg, store) = store_for(&config).await?;
            store
                .delete_user(&name)
                .await
                .map_err(|e| not_found(e, "user", &name))?;
            println!("deleted `{name}` and their API keys");
            let change = UserChange::Deleted;
            super::announce(&cfg, &[Event::User { name, change }]).await;
        }
        UserCommand::List { config, json } => {
            let (_, store) = store_for(&config).await?;
            let users = store.list_users().await?;
            if !json {
                println!("{:<20} {:<24} {:<12} STATUS", "NAME", "ROLES", "TENANT");
            }
            for u in users {
                let (status, at, reason) = match &u.status {
                    AccountStatus::Active => ("active", None, None),
                    AccountStatus::Suspended { at, reason } => {
                        ("suspended", Some(*at), Some(reason.as_str()))
                    }
                };
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "name": u.name, "roles": u.roles, "tenant": u.tenant, "status": status,
                            "suspended_at": at.map(fmt_time), "reason": reason,
                            "created_at": fmt_time(u.created_at),
                            "attributes": u.attributes,
                        })
                    );
                } else {
                    let status = match reason {
                        Some(r) => format!("suspended ({r})"),
                        None => status.to_owned(),
                    };
                    println!(
                        "{:<20} {:<24} {:<12} {}",
                        u.name,
                        u.roles.join(","),
                        u.tenant.as_deref().unwrap_or("-"),
                        status
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `user set` / `user unset`: one store transaction, then the change is announced to the
/// running gateways (they also re-read every user within a second without Redis).
async fn attributes_changed(
    config: &crate::cli::ConfigArg,
    name: &str,
    set: gatehouse_core::attributes::Attributes,
    unset: Vec<String>,
) -> anyhow::Result<()> {
    gatehouse_core::attributes::check_change(&set, &unset).map_err(anyhow::Error::msg)?;
    let (cfg, store) = store_for(config).await?;
    let attributes = store
        .update_attributes(name, set, unset)
        .await
        .map_err(|e| not_found(e, "user", name))?;
    let shown: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("attributes of `{name}`: {}", shown.join(" "));
    let change = UserChange::Attributes { attributes };
    let name = name.to_owned();
    super::announce(&cfg, &[Event::User { name, change }]).await;
    Ok(())
}

pub async fn key(cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeyCommand::Create {
            config,
            user,
            scopes,
            read_only,
            expires,
            name,
        } => {
            let ttl = expires
                .as_deref()
                .map(|e| parse_duration(e).map_err(|m| anyhow::anyhow!("--expires `{e}`: {m}")))
                .transpose()?;
            let (_, store) = store_for(&config).await?;
            let t = now();
            let expires_at = ttl.map(|d| t + i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2));
            let spec = KeySpec {
                user: user.clone(),
                scopes: scopes.clone(),
                read_only,
                expires_at,
                label: name,
            };
            let (key, secret) = admin_keys::create(store.as_ref(), spec, t).await?;
            let id = key.id;
            eprintln!(
                "created API key `{id}` for `{user}` (scopes: [{}]{}{}); it is shown only once:",
                scopes.join(" "),
                if read_only { ", read-only" } else { "" },
                expires_at
                    .map(|e| format!(", expires {}", fmt_time(e)))
                    .unwrap_or_default()
            );
            println!("{}", secret.expose());
        }
        KeyCommand::Revoke { config, key } => {
            let (_, store) = store_for(&config).await?;
            // The id, the prefix, or the full key as printed (never echoed back).
            let key = if key == "-" {
                read_password_stdin().context("cannot read the key from standard input")?
            } else {
                key
            };
            match admin_keys::revoke(store.as_ref(), &key, now()).await {
                Ok(k) => println!("revoked `{}` of `{}`", k.id, k.user),
                // A full key is never repeated (it may be a live secret).
                Err(KeyError::NoKey) if key.starts_with("gh_") => {
                    bail!("no API key matches the key given")
                }
                Err(KeyError::NoKey) => bail!("no API key `{key}`"),
                Err(e) => return Err(e.into()),
            }
        }
        KeyCommand::List { config, user, json } => {
            let (_, store) = store_for(&config).await?;
            let keys = store.list_api_keys(user.as_deref()).await?;
            if !json {
                println!(
                    "{:<20} {:<16} {:<24} {:<10} STATE",
                    "ID", "USER", "SCOPES", "MODE"
                );
            }
            let t = now();
            for k in keys {
                let state = if k.revoked_at.is_some() {
                    "revoked".to_owned()
                } else if k.expires_at.is_some_and(|e| e <= t) {
                    "expired".to_owned()
                } else {
                    k.expires_at.map_or_else(
                        || "active".to_owned(),
                        |e| format!("active until {}", fmt_time(e)),
                    )
                };
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": k.id, "prefix": k.prefix, "user": k.user, "scopes": k.scopes,
                            "read_only": k.read_only, "expires_at": k.expires_at.map(fmt_time),
                            "revoked_at": k.revoked_at.map(fmt_time), "created_at": fmt_time(k.created_at),
                        })
                    );
                } else {
                    println!(
                        "{:<20} {:<16} {:<24} {:<10} {}",
                        k.id,
                        k.user,
                        k.scopes.join(" "),
                        if k.read_only {
                            "read-only"
                        } else {
                            "read-write"
                        },
                        state
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn import_htpasswd(
    config: &crate::cli::ConfigArg,
    file: &Path,
    roles: &[String],
    update: bool,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    let entries = match parse_htpasswd(&text) {
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
    let (_, store) = store_for(config).await?;
    let (mut created, mut updated, mut skipped) = (0, 0, 0);
    for e in entries {
        match store.get_user(&e.user).await? {
            Some(_) if update => {
                store.set_password(&e.user, Some(e.hash.clone())).await?;
                updated += 1;
            }
            Some(_) => {
                eprintln!(
                    "skipped `{}`: the user exists (use --update to replace the password)",
                    e.user
                );
                skipped += 1;
            }
            None => {
                store
                    .create_user(
                        NewUser {
                            name: e.user.clone(),
                            password_hash: Some(e.hash.clone()),
                            roles: roles.to_vec(),
                            tenant: None,
                        },
                        now(),
                    )
                    .await?;
                created += 1;
            }
        }
    }
    println!("imported {created} user(s), updated {updated}, skipped {skipped}");
    Ok(ExitCode::SUCCESS)
}

pub async fn token(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Issue {
        config,
        user,
        scopes,
        ttl,
        acr,
    } = cmd;
    let (cfg, store) = store_for(&config).await?;
    let Some(u) = store.get_user(&user).await? else {
        bail!("no user `{user}`");
    };
    let ttl = match ttl {
        Some(t) => parse_duration(&t).map_err(|m| anyhow::anyhow!("--ttl `{t}`: {m}"))?,
        None => cfg.tokens.access_ttl,
    };
    let keys = gatehouse_server::keys::OwnKeys::load_or_create(store.as_ref(), now()).await?;
    let t = now();
    let token = gatehouse_server::tokens::issue(
        &keys,
        &cfg.tokens,
        &gatehouse_server::tokens::TokenRequest {
            user: &u,
            scopes: &scopes,
            acr: &acr,
            auth_time: t,
            amr: &[],
            session_id: None,
            now: t,
            ttl,
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
