//! Contract of moving every record to another store (`export`, `export_audit`,
//! `count_records`, `import_from`; design §5 "a single-node install becomes a cluster"). The
//! pair cases take a source and a target, of any two backends (`copy.rs` runs every pair).

use gatehouse_store::{
    AuditEntry, AuditKind, AuditQuery, AuditRecord, DigestAlgorithm, DigestHa1, Export, NewApiKey,
    NewUser, RecordCounts, Revocation, RevocationKind, RotateOutcome, SigningKey, Store,
    StoreError,
};

use super::sessions::{TTL, h, new_session, rotated};
use super::{Outcome, T0, audit_record, new_key, new_user, signing_key};

/// The TOTP time-step carol used before the copy.
const CAROL_STEP: i64 = 56_666_000;
const REALM: &str = "api";

/// Users (active, suspended, with MFA, Digest-only), API keys (used, revoked), signing keys
/// (current, retired, the master secret's row), sessions (rotated, revoked) with their
/// refresh tokens, revocations (one purged, so the sequence is ahead of the rows), Digest
/// secrets of both algorithms, audit records of both kinds.
pub async fn fill_one_of_everything(store: &dyn Store) -> Outcome {
    store.create_user(new_user("alice"), T0).await?;
    store.create_user(new_user("bob"), T0 + 1).await?;
    store
        .suspend_user("bob", "left the company", T0 + 2)
        .await?;
    store.create_user(new_user("carol"), T0 + 3).await?;
    store.set_mfa_secret("carol", Some(vec![0xC0; 40])).await?;
    assert!(store.accept_totp_step("carol", CAROL_STEP).await?);
    let dave = NewUser {
        name: "dave".into(),
        ..NewUser::default()
    };
    store.create_user(dave, T0 + 3).await?;
    for (algorithm, len, fill) in [
        (DigestAlgorithm::Md5, 32, "d"),
        (DigestAlgorithm::Sha256, 64, "e"),
    ] {
        let secret = DigestHa1 {
            ha1: "a".repeat(len),
            userhash: fill.repeat(len),
        };
        store
            .set_digest_ha1("dave", REALM, algorithm, Some(secret))
            .await?;
    }

    let used = NewApiKey {
        expires_at: Some(T0 + 86_400),
        label: Some("ci".into()),
        ..new_key("k1", "gh_k1", "alice", 1)
    };
    store.create_api_key(used, T0 + 4).await?;
    assert!(store.touch_api_key("k1", T0 + 5).await?);
    let revoked = NewApiKey {
        read_only: true,
        ..new_key("k2", "gh_k2", "bob", 2)
    };
    store.create_api_key(revoked, T0 + 4).await?;
    assert!(store.revoke_api_key("gh_k2", T0 + 6).await?);

    let retired = SigningKey {
        retired_at: Some(T0),
        ..signing_key("2024-a", T0 - 100)
    };
    store.add_signing_key(retired).await?;
    store.add_signing_key(signing_key("2024-b", T0)).await?;
    // The cluster master secret is a row of `signing_keys` (gatehouse-server keys.rs).
    let master = SigningKey {
        kid: "gatehouse-master-1".into(),
        algorithm: "master-secret".into(),
        private_pkcs8: vec![0x42; 32],
        public: Vec::new(),
        created_at: T0,
        retired_at: None,
    };
    store.add_signing_key(master).await?;

    store
        .create_session(new_session("s1", "alice", 1), T0 + 7)
        .await?;
    rotated(
        store
            .rotate_refresh(h(1), h(2), T0 + 8, T0 + 8 + TTL)
            .await?,
    );
    assert!(store.set_session_acr("s1", "mfa", T0 + 9).await?);
    store
        .create_session(new_session("s2", "carol", 3), T0 + 7)
        .await?;
    assert!(store.revoke_session("s2", "logout", T0 + 9).await?);

    let token = |id: &str, expires_at| Revocation {
        id: id.into(),
        kind: RevocationKind::Token,
        expires_at,
        reason: "logout".into(),
    };
    assert!(
        store
            .revoke_token(token("jti-1", T0 + TTL), T0 + 10)
            .await?
    );
    // The newest entry dies first: the sequence stays ahead of the rows.
    assert!(
        store
            .revoke_token(token("jti-gone", T0 + 20), T0 + 10)
            .await?
    );
    assert_eq!(store.purge_revocations(T0 + 21).await?, 1);

    let alert = AuditRecord {
        kind: AuditKind::Alert,
        status: 0,
        ..audit_record(T0 + 12, 0, Some("alert"), None)
    };
    store
        .append_audit(vec![
            audit_record(T0 + 10, 401, Some("missing_credentials"), None),
            audit_record(T0 + 11, 404, Some("insufficient_role"), Some("bob")),
            alert,
        ])
        .await?;
    store
        .add_stats(vec![gatehouse_store::StatRow {
            minute: T0 - T0 % 60,
            route: "admin".into(),
            status: 403,
            reason: "insufficient_role".into(),
            count: 7,
        }])
        .await?;

    let counts = store.count_records().await?;
    assert!(
        counts.tables().iter().all(|&(_, n)| n > 0),
        "one of everything: {counts:?}"
    );
    Ok(())
}

/// Every audit entry, through `export_audit` pages of 2.
async fn all_audit(store: &dyn Store) -> Result<Vec<AuditEntry>, StoreError> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |e: &AuditEntry| e.seq);
        let page = store.export_audit(after, 2).await?;
        if page.is_empty() {
            return Ok(all);
        }
        assert!(page.len() <= 2, "a page holds at most `limit` entries");
        all.extend(page);
    }
}

pub async fn export_of_an_empty_store(store: &dyn Store) -> Outcome {
    assert_eq!(store.export().await?, Export::default());
    assert_eq!(store.count_records().await?, RecordCounts::default());
    assert!(store.export_audit(0, 10).await?.is_empty());
    Ok(())
}

pub async fn export_reads_everything(store: &dyn Store) -> Outcome {
    fill_one_of_everything(store).await?;
    let export = store.export().await?;
    let counts = store.count_records().await?;
    let names: Vec<&str> = export.users.iter().map(|u| u.user.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave"], "users by name");
    assert_eq!(counts.users, 4);
    let carol = &export.users[2];
    assert_eq!(carol.mfa_last_step, Some(CAROL_STEP));
    assert_eq!(carol.user.mfa_secret.as_deref(), Some(&[0xC0; 40][..]));
    assert_eq!(export.api_keys.len() as u64, counts.api_keys);
    assert_eq!(export.api_keys[0].last_used_at, Some(T0 + 5));
    assert_eq!(export.api_keys[1].revoked_at, Some(T0 + 6));
    let kids: Vec<&str> = export.signing_keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["2024-a", "2024-b", "gatehouse-master-1"]);
    assert_eq!(export.sessions.len(), 2);
    assert_eq!(export.sessions[0].acr, "mfa");
    // s1: the login's token (used) and its successor; s2: its only token.
    assert_eq!(export.refresh_tokens.len(), 3);
    let successor = export
        .refresh_tokens
        .iter()
        .find(|t| t.hash == h(2))
        .ok_or_else(|| StoreError::Unavailable("rotated token missing".into()))?;
    assert_eq!(
        (
            successor.generation,
            successor.parent_hash,
            successor.used_at
        ),
        (1, Some(h(1)), None)
    );
    let seqs: Vec<i64> = export.revocations.iter().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), 2, "the session's and jti-1: {seqs:?}");
    assert!(
        export.revocation_seq > seqs[1],
        "the purged entry's number stays used: {} vs {seqs:?}",
        export.revocation_seq
    );
    assert_eq!(export.digest_secrets.len(), 2);
    assert_eq!(export.digest_secrets[0].secret.ha1, "a".repeat(32));
    let audit = all_audit(store).await?;
    assert_eq!(audit.len() as u64, counts.audit);
    assert_eq!(export.audit_seq, audit[2].seq);
    Ok(())
}

/// Fills `source`, copies it into the empty `target`, and checks that every record arrived
/// as stored and that what the source issued keeps working on the target.
pub async fn copy_round_trips(source: &dyn Store, target: &dyn Store) -> Outcome {
    fill_one_of_everything(source).await?;
    let before = source.export().await?;
    let before_audit = all_audit(source).await?;
    let counts = target.import_from(source).await?;
    assert_eq!(counts, source.count_records().await?);
    assert_eq!(target.count_records().await?, counts);
    assert_eq!(target.export().await?, before, "every record as stored");
    assert_eq!(all_audit(target).await?, before_audit);
    assert_eq!(source.export().await?, before, "the source is only read");

    // New numbers come after the source's, purged ones included.
    let fresh = Revocation {
        id: "jti-after-copy".into(),
        kind: RevocationKind::Token,
        expires_at: T0 + TTL,
        reason: "logout".into(),
    };
    assert!(target.revoke_token(fresh.clone(), T0 + 30).await?);
    let (new, _) = target.revocations_since(before.revocation_seq).await?;
    assert_eq!(new, [fresh], "above the source's last number, and only it");
    target
        .append_audit(vec![audit_record(T0 + 30, 403, Some("x"), None)])
        .await?;
    let newest = target
        .query_audit(AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await?;
    assert!(newest[0].seq > before.audit_seq, "{newest:?}");

    // A refresh token issued before the copy rotates after it; a used one is still caught.
    let session = rotated(
        target
            .rotate_refresh(h(2), h(9), T0 + 40, T0 + 40 + TTL)
            .await?,
    );
    assert_eq!((session.id.as_str(), session.acr.as_str()), ("s1", "mfa"));
    assert!(matches!(
        target
            .rotate_refresh(h(1), h(10), T0 + 41, T0 + 41 + TTL)
            .await?,
        RotateOutcome::Reused { .. }
    ));
    // A TOTP code used before the copy is still refused.
    assert!(!target.accept_totp_step("carol", CAROL_STEP).await?);
    assert!(target.accept_totp_step("carol", CAROL_STEP + 1).await?);
    // Keys and Digest secrets are found as before.
    let key = target
        .find_api_key("gh_k1")
        .await?
        .ok_or_else(|| StoreError::Unavailable("key lost".into()))?;
    assert!(key.hash_matches(&[1; 32]) && key.is_usable(T0 + 50));
    assert_eq!(
        target
            .find_user_by_digest_userhash(&"E".repeat(64), REALM, DigestAlgorithm::Sha256)
            .await?
            .as_deref(),
        Some("dave")
    );
    Ok(())
}

/// A target that holds anything (here: the signing key a node made when it first started)
/// is refused, naming what it holds, and neither store changes.
pub async fn copy_refuses_a_non_empty_target(source: &dyn Store, target: &dyn Store) -> Outcome {
    fill_one_of_everything(source).await?;
    target.add_signing_key(signing_key("node-key", T0)).await?;
    let source_before = source.export().await?;
    let target_before = target.export().await?;
    let err = target.import_from(source).await.err();
    assert_eq!(
        err,
        Some(StoreError::NotEmpty {
            holds: "signing_keys: 1".into()
        })
    );
    assert_eq!(target.export().await?, target_before);
    assert_eq!(source.export().await?, source_before);
    let expected = RecordCounts {
        signing_keys: 1,
        ..RecordCounts::default()
    };
    assert_eq!(target.count_records().await?, expected);
    Ok(())
}

/// An audit trail longer than a page of the copy (5000) and than a batch of its inserts
/// (1000) arrives whole and in order.
pub async fn copy_pages_a_large_audit_trail(source: &dyn Store, target: &dyn Store) -> Outcome {
    const N: i64 = 12_345;
    for chunk in (0..N).collect::<Vec<_>>().chunks(2_000) {
        let records = chunk
            .iter()
            .map(|i| audit_record(T0 + i, 401, Some("missing_credentials"), None))
            .collect();
        source.append_audit(records).await?;
    }
    let counts = target.import_from(source).await?;
    assert_eq!(counts.audit, N as u64);
    let copied = target.export_audit(0, N as u32 + 1).await?;
    assert_eq!(copied, source.export_audit(0, N as u32 + 1).await?);
    assert_eq!(copied.len() as i64, N);
    Ok(())
}
