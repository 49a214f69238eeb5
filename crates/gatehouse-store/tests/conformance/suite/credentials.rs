//! Contract of the per-user credentials of the identity features: TOTP secrets with step
//! replay protection (RFC 6238 §5.2), Digest HA1 secrets (RFC 7616), and deleting a user.

use gatehouse_store::{
    DigestAlgorithm, DigestHa1, NewApiKey, Revocation, RevocationKind, RotateOutcome, Store,
    StoreError,
};

use super::sessions::{TTL, h, new_session, rotated, session, user};
use super::{Outcome, T0, not_found};

pub async fn totp_steps_are_monotonic(store: &dyn Store) -> Outcome {
    store.create_user(user("alice"), T0).await?;
    assert!(
        !store.accept_totp_step("alice", 100).await?,
        "no secret, no step"
    );
    assert_eq!(
        store.accept_totp_step("ghost", 100).await.err(),
        Some(not_found("user", "ghost"))
    );
    store
        .set_mfa_secret("alice", Some(b"sealed-1".to_vec()))
        .await?;
    assert!(store.accept_totp_step("alice", 100).await?);
    assert!(
        !store.accept_totp_step("alice", 100).await?,
        "same step twice"
    );
    assert!(!store.accept_totp_step("alice", 99).await?, "older step");
    assert!(store.accept_totp_step("alice", 102).await?);
    assert!(!store.accept_totp_step("alice", 101).await?);

    // A new secret keeps the last step; clearing the secret forgets it.
    store
        .set_mfa_secret("alice", Some(b"sealed-2".to_vec()))
        .await?;
    assert!(!store.accept_totp_step("alice", 102).await?);
    store.set_mfa_secret("alice", None).await?;
    assert!(!store.accept_totp_step("alice", 200).await?);
    store
        .set_mfa_secret("alice", Some(b"sealed-3".to_vec()))
        .await?;
    assert!(store.accept_totp_step("alice", 50).await?);

    // Concurrent submissions of one code: exactly one is accepted.
    let go = || store.accept_totp_step("alice", 60);
    let r = tokio::join!(go(), go(), go(), go(), go(), go());
    let accepted = [r.0?, r.1?, r.2?, r.3?, r.4?, r.5?];
    assert_eq!(accepted.iter().filter(|a| **a).count(), 1, "{accepted:?}");
    Ok(())
}

pub async fn mfa_secret_round_trip(store: &dyn Store) -> Outcome {
    let secret = b"ENCRYPTED-TOTP-SEED".to_vec();
    let created = store.create_user(user("alice"), T0).await?;
    assert_eq!(created.mfa_secret, None);
    store.set_mfa_secret("alice", Some(secret.clone())).await?;
    let alice = store
        .get_user("alice")
        .await?
        .ok_or_else(|| not_found("user", "alice"))?;
    assert_eq!(alice.mfa_secret.as_deref(), Some(secret.as_slice()));
    assert_eq!(store.list_users().await?, std::slice::from_ref(&alice));
    for text in [
        format!("{alice:?}"),
        format!("{:?}", store.list_users().await?),
    ] {
        assert!(text.contains("mfa_secret: Some(\"<redacted>\")"), "{text}");
        assert!(!text.contains("ENCRYPTED"), "{text}");
        let bytes = format!("{:?}", secret.as_slice());
        assert!(!text.contains(bytes.trim_matches(['[', ']'])), "{text}");
    }
    store.set_password("alice", Some("$2b$12$x".into())).await?;
    let alice = store
        .get_user("alice")
        .await?
        .ok_or_else(|| not_found("user", "alice"))?;
    assert!(alice.mfa_secret.is_some(), "other updates keep the secret");
    store.set_mfa_secret("alice", None).await?;
    let alice = store
        .get_user("alice")
        .await?
        .ok_or_else(|| not_found("user", "alice"))?;
    assert_eq!(alice.mfa_secret, None);
    assert_eq!(
        store.set_mfa_secret("ghost", None).await.err(),
        Some(not_found("user", "ghost"))
    );
    Ok(())
}

// As a caller computes them (RFC 7616 §3.4.2, §3.4.4) for user `Mufasa`, realm
// `http-auth@example.org`, password `Circle of Life` (the RFC's example account).
const MD5_HA1: &str = "3d78807defe7de2157e2b0b6573a855f";
const SHA_HA1: &str = "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232";
const MD5_USERHASH: &str = "4238f3a16167373febb9bc4d43db9cc4";
const SHA_USERHASH: &str = "a947aad205e80e429958a387394944c6b496301e79f89d35a4cc23b6ee12b5b6";
/// MD5 HA1 and userhash of `alice` in realm `api` (password `secret`).
const ALICE_HA1: &str = "64daccb98e690d1130b2f0a509f0d34f";
const ALICE_USERHASH: &str = "10075febdcb5875807ddf305bd3b0a25";

fn secret(ha1: &str, userhash: &str) -> Option<DigestHa1> {
    Some(DigestHa1 {
        ha1: ha1.into(),
        userhash: userhash.into(),
    })
}

pub async fn digest_secrets(store: &dyn Store) -> Outcome {
    use DigestAlgorithm::{Md5, Sha256};
    let realm = "http-auth@example.org";
    store.create_user(user("Mufasa"), T0).await?;
    store.create_user(user("bob"), T0).await?;
    let md5_userhash = MD5_USERHASH;
    store
        .set_digest_ha1(
            "Mufasa",
            realm,
            Sha256,
            secret(&SHA_HA1.to_uppercase(), SHA_USERHASH),
        )
        .await?;
    store
        .set_digest_ha1("Mufasa", realm, Md5, secret(MD5_HA1, md5_userhash))
        .await?;
    assert_eq!(
        store
            .get_digest_ha1("Mufasa", realm, Sha256)
            .await?
            .as_deref(),
        Some(SHA_HA1),
        "stored lower-case"
    );
    assert_eq!(
        store.get_digest_ha1("Mufasa", realm, Md5).await?.as_deref(),
        Some(MD5_HA1)
    );
    assert_eq!(store.get_digest_ha1("Mufasa", "other", Md5).await?, None);
    assert_eq!(store.get_digest_ha1("bob", realm, Md5).await?, None);

    let find = |hash: String, realm: &'static str, alg| async move {
        store.find_user_by_digest_userhash(&hash, realm, alg).await
    };
    assert_eq!(
        find(SHA_USERHASH.to_uppercase(), realm, Sha256)
            .await?
            .as_deref(),
        Some("Mufasa")
    );
    assert_eq!(
        find(md5_userhash.into(), realm, Md5).await?.as_deref(),
        Some("Mufasa")
    );
    assert_eq!(
        find(SHA_USERHASH.into(), realm, Md5).await?,
        None,
        "per algorithm"
    );
    assert_eq!(
        find(SHA_USERHASH.into(), "other", Sha256).await?,
        None,
        "per realm"
    );

    // Replacing (a new password); a userhash is unique within (realm, algorithm).
    store
        .set_digest_ha1("Mufasa", realm, Md5, secret(ALICE_HA1, md5_userhash))
        .await?;
    assert_eq!(
        store.get_digest_ha1("Mufasa", realm, Md5).await?.as_deref(),
        Some(ALICE_HA1)
    );
    assert_eq!(
        store
            .set_digest_ha1("bob", realm, Md5, secret(MD5_HA1, md5_userhash))
            .await
            .err(),
        Some(StoreError::Conflict {
            what: "digest userhash",
            key: md5_userhash.into()
        })
    );
    store
        .set_digest_ha1("bob", "other", Md5, secret(MD5_HA1, md5_userhash))
        .await?;

    // Malformed values and unknown users are refused; messages do not echo the value.
    for bad in [&SHA_HA1[..63], "zz", &format!("{}g", &SHA_HA1[..63])] {
        let err = store
            .set_digest_ha1("Mufasa", realm, Sha256, secret(bad, SHA_USERHASH))
            .await
            .err();
        let Some(StoreError::Invalid {
            what: "digest ha1",
            expected,
        }) = err
        else {
            panic!("{bad}: {err:?}");
        };
        assert_eq!(expected, "64 hex digits for `SHA-256`");
    }
    assert!(matches!(
        store
            .set_digest_ha1("Mufasa", realm, Md5, secret(MD5_HA1, SHA_USERHASH))
            .await,
        Err(StoreError::Invalid {
            what: "digest userhash",
            ..
        })
    ));
    assert_eq!(
        store
            .get_digest_ha1("Mufasa", realm, Sha256)
            .await?
            .as_deref(),
        Some(SHA_HA1),
        "refused updates change nothing"
    );
    for value in [secret(MD5_HA1, md5_userhash), None] {
        assert_eq!(
            store.set_digest_ha1("ghost", realm, Md5, value).await.err(),
            Some(not_found("user", "ghost"))
        );
    }

    // Clearing, twice.
    store.set_digest_ha1("Mufasa", realm, Sha256, None).await?;
    store.set_digest_ha1("Mufasa", realm, Sha256, None).await?;
    assert_eq!(store.get_digest_ha1("Mufasa", realm, Sha256).await?, None);
    assert_eq!(find(SHA_USERHASH.into(), realm, Sha256).await?, None);
    assert!(store.get_digest_ha1("Mufasa", realm, Md5).await?.is_some());
    Ok(())
}

pub async fn delete_user_removes_identity(store: &dyn Store) -> Outcome {
    let realm = "api";
    for name in ["alice", "bob"] {
        store.create_user(user(name), T0).await?;
        store.set_mfa_secret(name, Some(b"sealed".to_vec())).await?;
    }
    store.accept_totp_step("alice", 500).await?;
    store
        .create_session(new_session("a1", "alice", 1), T0)
        .await?;
    store
        .create_session(new_session("a2", "alice", 2), T0)
        .await?;
    store
        .create_session(new_session("b1", "bob", 3), T0)
        .await?;
    rotated(
        store
            .rotate_refresh(h(1), h(4), T0 + 1, T0 + 2 * TTL)
            .await?,
    );
    store.revoke_session("a2", "logout", T0 + 2).await?;
    store
        .set_digest_ha1(
            "alice",
            realm,
            DigestAlgorithm::Md5,
            secret(ALICE_HA1, ALICE_USERHASH),
        )
        .await?;
    store
        .create_api_key(
            NewApiKey {
                id: "k1".into(),
                prefix: "gh_k1".into(),
                hash: [1; 32],
                user: "alice".into(),
                scopes: Vec::new(),
                read_only: false,
                expires_at: None,
                label: None,
            },
            T0,
        )
        .await?;
    let (_, cursor) = store.revocations_since(0).await?;

    store.delete_user("alice").await?;
    assert_eq!(store.get_session("a1").await?, None);
    assert_eq!(store.get_session("a2").await?, None);
    assert!(store.list_sessions(Some("alice"), true).await?.is_empty());
    for presented in [h(1), h(2), h(4)] {
        assert_eq!(
            store
                .rotate_refresh(presented, h(50), T0 + 3, T0 + TTL)
                .await?,
            RotateOutcome::Unknown
        );
    }
    assert_eq!(
        store
            .get_digest_ha1("alice", realm, DigestAlgorithm::Md5)
            .await?,
        None
    );
    assert_eq!(
        store
            .find_user_by_digest_userhash(ALICE_USERHASH, realm, DigestAlgorithm::Md5)
            .await?,
        None
    );
    assert!(store.find_api_key("gh_k1").await?.is_none());
    assert_eq!(
        store.revocations_since(cursor).await?.0,
        [Revocation {
            id: "a1".into(),
            kind: RevocationKind::Session,
            expires_at: T0 + 2 * TTL,
            reason: "user deleted".into(),
        }],
        "the live session's access tokens die with the user"
    );

    // Bob keeps everything; a new alice inherits nothing.
    assert!(session(store, "b1").await?.is_active(T0 + 3));
    rotated(store.rotate_refresh(h(3), h(5), T0 + 3, T0 + TTL).await?);
    let again = store.create_user(user("alice"), T0 + 10).await?;
    assert_eq!(again.mfa_secret, None);
    assert!(store.list_sessions(Some("alice"), true).await?.is_empty());
    store.set_mfa_secret("alice", Some(b"new".to_vec())).await?;
    assert!(
        store.accept_totp_step("alice", 1).await?,
        "old last step is gone"
    );
    store
        .set_digest_ha1(
            "alice",
            realm,
            DigestAlgorithm::Md5,
            secret(ALICE_HA1, ALICE_USERHASH),
        )
        .await?;
    store
        .create_session(new_session("a1", "alice", 1), T0 + 10)
        .await?;
    Ok(())
}
