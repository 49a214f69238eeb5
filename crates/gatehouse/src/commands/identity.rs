//! `gatehouse session …`, `keys …`, `user mfa …`.

use std::process::ExitCode;

use anyhow::bail;
use gatehouse_core::totp;
use gatehouse_server::auth::mfa::seal_totp_secret;
use gatehouse_server::clock::now;
use gatehouse_server::keys::{Secrets, generate};
use gatehouse_server::random::random_bytes;

use super::store_for;
use crate::cli::{KeysCommand, MfaCommand, SessionCommand};

fn fmt_time(t: i64) -> String {
    gatehouse_core::render::rfc3339(t)
}

pub async fn session(cmd: SessionCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SessionCommand::Revoke { config, user, id } => {
            let (cfg, store) = store_for(&config).await?;
            let t = now();
            let ids = match (user, id) {
                (Some(user), _) => {
                    if store.get_user(&user).await?.is_none() {
                        bail!("no user `{user}`");
                    }
                    let ids = store
                        .revoke_user_sessions(&user, "revoked by an administrator", t)
                        .await?;
                    println!("revoked {} session(s) of `{user}`", ids.len());
                    ids
                }
                (None, Some(id)) => {
                    if !store
                        .revoke_session(&id, "revoked by an administrator", t)
                        .await?
                    {
                        bail!("no active session `{id}`");
                    }
                    println!("revoked session `{id}`");
                    vec![id]
                }
                (None, None) => bail!("give `--user NAME` or `--id SESSION`"),
            };
            super::announce(&cfg, &super::revoke_events(&cfg, &ids, t)).await;
        }
        SessionCommand::List {
            config,
            user,
            all,
            json,
        } => {
            let (_, store) = store_for(&config).await?;
            let t = now();
            let sessions = store.list_sessions(user.as_deref(), all).await?;
            if !json {
                println!(
                    "{:<28} {:<16} {:<5} {:<22} STATE",
                    "ID", "USER", "ACR", "STARTED"
                );
            }
            for s in sessions {
                let state = match (&s.revoked_at, s.expires_at <= t) {
                    (Some(at), _) => format!(
                        "revoked {} ({})",
                        fmt_time(*at),
                        s.revoke_reason.as_deref().unwrap_or("-")
                    ),
                    (None, true) => "expired".to_owned(),
                    (None, false) => format!("active until {}", fmt_time(s.expires_at)),
                };
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": s.id, "user": s.user, "acr": s.acr, "amr": s.amr,
                            "auth_time": fmt_time(s.auth_time), "created_at": fmt_time(s.created_at),
                            "expires_at": fmt_time(s.expires_at), "revoked_at": s.revoked_at.map(fmt_time),
                            "revoke_reason": s.revoke_reason,
                        })
                    );
                } else {
                    println!(
                        "{:<28} {:<16} {:<5} {:<22} {state}",
                        s.id,
                        s.user,
                        s.acr,
                        fmt_time(s.created_at)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Rotate { config } => {
            let (cfg, store) = store_for(&config).await?;
            let t = now();
            // Tokens signed by the old keys live at most access_ttl (+ leeway): keep those
            // keys verifiable exactly that long.
            let grace = i64::try_from((cfg.tokens.access_ttl + cfg.tokens.leeway).as_secs())
                .unwrap_or(i64::MAX / 4);
            let old: Vec<_> = store
                .list_signing_keys()
                .await?
                .into_iter()
                .filter(|k| k.algorithm == "EdDSA" && k.retired_at.is_none())
                .collect();
            let key = generate(t).map_err(|e| anyhow::anyhow!(e))?;
            let kid = key.kid.clone();
            store.add_signing_key(key).await?;
            for k in &old {
                store.retire_signing_key(&k.kid, t + grace).await?;
            }
            println!(
                "new signing key `{kid}`; {} older key(s) stay verifiable until {}",
                old.len(),
                fmt_time(t + grace)
            );
        }
        KeysCommand::List { config } => {
            let (_, store) = store_for(&config).await?;
            let t = now();
            println!("{:<45} {:<7} {:<22} STATE", "KID", "ALG", "CREATED");
            for k in store
                .list_signing_keys()
                .await?
                .into_iter()
                .filter(|k| k.algorithm == "EdDSA")
            {
                let state = match k.retired_at {
                    Some(r) if r <= t => format!("retired {}", fmt_time(r)),
                    Some(r) => format!("verifies until {}", fmt_time(r)),
                    None => "active".to_owned(),
                };
                println!(
                    "{:<45} {:<7} {:<22} {state}",
                    k.kid,
                    k.algorithm,
                    fmt_time(k.created_at)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn mfa(cmd: MfaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MfaCommand::Enroll {
            config,
            name,
            issuer,
        } => {
            let (_, store) = store_for(&config).await?;
            if store.get_user(&name).await?.is_none() {
                bail!("no user `{name}`");
            }
            let secrets = Secrets::load_or_create(store.as_ref(), now()).await?;
            let secret = totp::generate_secret(&random_bytes::<20>());
            let sealed =
                seal_totp_secret(&secrets, &name, &secret).map_err(|e| anyhow::anyhow!(e))?;
            store.set_mfa_secret(&name, Some(sealed)).await?;
            let uri = totp::otpauth_uri(&issuer, &name, &secret);
            println!(
                "MFA enrolled for `{name}`. Scan the QR code or enter the secret in an authenticator app:\n"
            );
            if let Ok(code) = qrcode::QrCode::new(uri.as_bytes()) {
                let art = code
                    .render::<qrcode::render::unicode::Dense1x2>()
                    .dark_color(qrcode::render::unicode::Dense1x2::Light)
                    .light_color(qrcode::render::unicode::Dense1x2::Dark)
                    .build();
                println!("{art}\n");
            }
            println!("secret: {}", totp::base32_encode(&secret));
            println!("{uri}");
        }
        MfaCommand::Disable { config, name } => {
            let (_, store) = store_for(&config).await?;
            if store.get_user(&name).await?.is_none() {
                bail!("no user `{name}`");
            }
            store.set_mfa_secret(&name, None).await?;
            println!("MFA disabled for `{name}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}
