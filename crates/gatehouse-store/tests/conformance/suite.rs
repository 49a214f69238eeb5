//! The backend-independent contract of `Store`, written once against `&dyn Store`.
//!
//! Every case starts from an empty store and returns `Err` or panics on a violation. A new
//! backend runs all of them by adding a module to the `conformance!` invocation in `main.rs`.

mod copy;
mod credentials;
mod sessions;

use gatehouse_store::{
    AccountStatus, AuditKind, AuditQuery, AuditRecord, NewApiKey, NewUser, SigningKey, Store,
    StoreError,
};

pub use copy::*;
pub use credentials::*;
pub use sessions::*;

pub type Outcome = Result<(), StoreError>;

const T0: i64 = 1_700_000_000;

fn new_user(name: &str) -> NewUser {
    NewUser {
        name: name.into(),
        password_hash: Some(format!(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$secret-of-{name}"
        )),
        roles: vec!["writer".into(), "admin".into()],
        tenant: Some("acme".into()),
    }
}

fn new_key(id: &str, prefix: &str, user: &str, fill: u8) -> NewApiKey {
    NewApiKey {
        id: id.into(),
        prefix: prefix.into(),
        hash: [fill; 32],
        user: user.into(),
        scopes: vec!["orders:read".into(), "orders:write".into()],
        read_only: false,
        expires_at: None,
        label: None,
    }
}

fn not_found(what: &'static str, key: &str) -> StoreError {
    StoreError::NotFound {
        what,
        key: key.into(),
    }
}

async fn status_of(store: &dyn Store, name: &str) -> Result<AccountStatus, StoreError> {
    let user = store.get_user(name).await?;
    user.map(|u| u.status)
        .ok_or_else(|| not_found("user", name))
}

async fn revoked_at(store: &dyn Store, prefix: &str) -> Result<Option<i64>, StoreError> {
    let key = store.find_api_key(prefix).await?;
    key.map(|k| k.revoked_at)
        .ok_or_else(|| not_found("api key", prefix))
}

pub async fn ping(store: &dyn Store) -> Outcome {
    store.ping().await
}

pub async fn users_crud(store: &dyn Store) -> Outcome {
    assert!(store.list_users().await?.is_empty());
    let created = store.create_user(new_user("zoë"), T0).await?;
    assert_eq!(created.status, AccountStatus::Active);
    assert_eq!(created.created_at, T0);
    assert_eq!(created.roles, ["writer", "admin"], "role order is kept");
    assert_eq!(store.get_user("zoë").await?, Some(created.clone()));

    let bare = NewUser {
        name: "bob".into(),
        ..NewUser::default()
    };
    store.create_user(bare, T0 + 5).await?;
    let bob = store
        .get_user("bob")
        .await?
        .ok_or_else(|| not_found("user", "bob"))?;
    assert_eq!(
        (bob.password_hash, bob.tenant, bob.roles.len()),
        (None, None, 0)
    );
    assert_eq!(bob.created_at, T0 + 5);

    let names: Vec<String> = store
        .list_users()
        .await?
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["bob", "zoë"], "users are listed by name");
    assert_eq!(store.get_user("nobody").await?, None);
    assert_eq!(
        store.get_user("ZOË").await?,
        None,
        "names are case-sensitive"
    );

    store.set_password("zoë", Some("$2b$12$new".into())).await?;
    store.set_roles("zoë", vec!["reader".into()]).await?;
    store.set_tenant("zoë", Some("globex".into())).await?;
    let zoe = store
        .get_user("zoë")
        .await?
        .ok_or_else(|| not_found("user", "zoë"))?;
    assert_eq!(zoe.password_hash.as_deref(), Some("$2b$12$new"));
    assert_eq!(zoe.roles, ["reader"]);
    assert_eq!(zoe.tenant.as_deref(), Some("globex"));
    assert_eq!(zoe.created_at, T0, "updates keep created_at");

    store.set_password("zoë", None).await?;
    store.set_roles("zoë", Vec::new()).await?;
    store.set_tenant("zoë", None).await?;
    let zoe = store
        .get_user("zoë")
        .await?
        .ok_or_else(|| not_found("user", "zoë"))?;
    assert_eq!(
        (zoe.password_hash, zoe.roles.len(), zoe.tenant),
        (None, 0, None)
    );

    store.delete_user("bob").await?;
    assert_eq!(store.get_user("bob").await?, None);
    assert_eq!(store.list_users().await?.len(), 1);
    Ok(())
}

pub async fn user_errors(store: &dyn Store) -> Outcome {
    let original = store.create_user(new_user("alice"), T0).await?;
    let mut again = new_user("alice");
    again.roles = vec!["root".into()];
    assert_eq!(
        store.create_user(again, T0 + 1).await.err(),
        Some(StoreError::Conflict {
            what: "user",
            key: "alice".into()
        })
    );
    assert_eq!(
        store.get_user("alice").await?,
        Some(original),
        "conflict changed nothing"
    );

    let missing = Some(not_found("user", "ghost"));
    assert_eq!(store.set_password("ghost", None).await.err(), missing);
    assert_eq!(store.set_roles("ghost", vec![]).await.err(), missing);
    assert_eq!(store.set_tenant("ghost", None).await.err(), missing);
    assert_eq!(store.suspend_user("ghost", "x", T0).await.err(), missing);
    assert_eq!(store.unsuspend_user("ghost").await.err(), missing);
    assert_eq!(store.delete_user("ghost").await.err(), missing);
    assert_eq!(
        store.list_users().await?.len(),
        1,
        "nothing was created by an update"
    );
    Ok(())
}

/// Issue 13: attributes are set and removed in one transaction, keep their shapes, and come
/// back with the user (get, list).
pub async fn attributes_round_trip(store: &dyn Store) -> Outcome {
    use gatehouse_core::attributes::{Attributes, Value, parse_assignment};
    store.create_user(new_user("ann"), T0).await?;
    assert!(
        store
            .get_user("ann")
            .await?
            .is_some_and(|u| u.attributes.is_empty())
    );
    let set: Attributes = [
        "email_verified=true",
        "credits=2.5",
        "plan=pro",
        r#"groups=["a","b"]"#,
    ]
    .iter()
    .filter_map(|a| parse_assignment(a).ok())
    .collect();
    let after = store
        .update_attributes("ann", set.clone(), Vec::new())
        .await?;
    assert_eq!(after, set);
    let more: Attributes = [("plan".to_owned(), Value::Str("team".into()))].into();
    let after = store
        .update_attributes("ann", more, vec!["groups".into(), "absent".into()])
        .await?;
    let keys: Vec<&str> = after.keys().map(String::as_str).collect();
    assert_eq!(keys, ["credits", "email_verified", "plan"]);
    assert_eq!(after["plan"], Value::Str("team".into()));
    let ann = store
        .get_user("ann")
        .await?
        .ok_or_else(|| not_found("user", "ann"))?;
    assert_eq!(ann.attributes, after);
    assert_eq!(store.list_users().await?[0].attributes, after);
    assert_eq!(
        store
            .update_attributes("ghost", Attributes::new(), Vec::new())
            .await
            .err(),
        Some(not_found("user", "ghost"))
    );
    let bad: Attributes = [("no-dash".to_owned(), Value::Bool(true))].into();
    assert!(matches!(
        store.update_attributes("ann", bad, Vec::new()).await.err(),
        Some(StoreError::Invalid { .. })
    ));
    Ok(())
}

pub async fn suspend_round_trip(store: &dyn Store) -> Outcome {
    store.create_user(new_user("carol"), T0).await?;
    store.unsuspend_user("carol").await?; // no-op on an active user

    store.suspend_user("carol", "chargeback", T0 + 10).await?;
    let suspended = |at, reason: &str| AccountStatus::Suspended {
        at,
        reason: reason.into(),
    };
    assert_eq!(
        status_of(store, "carol").await?,
        suspended(T0 + 10, "chargeback")
    );

    store
        .suspend_user("carol", "abuse report #7", T0 + 20)
        .await?;
    assert_eq!(
        status_of(store, "carol").await?,
        suspended(T0 + 20, "abuse report #7")
    );

    store.unsuspend_user("carol").await?;
    assert_eq!(status_of(store, "carol").await?, AccountStatus::Active);
    let carol = store
        .get_user("carol")
        .await?
        .ok_or_else(|| not_found("user", "carol"))?;
    assert_eq!(
        carol.roles,
        ["writer", "admin"],
        "suspension leaves roles alone"
    );
    Ok(())
}

pub async fn api_keys_lifecycle(store: &dyn Store) -> Outcome {
    store.create_user(new_user("alice"), T0).await?;
    store.create_user(new_user("bob"), T0).await?;
    let mut first = new_key("k1", "gh_aaaa", "alice", 0xA1);
    first.read_only = true;
    first.expires_at = Some(T0 + 3600);
    first.label = Some("ci deploy".into());
    let created = store.create_api_key(first, T0 + 1).await?;
    assert_eq!(
        (created.created_at, created.revoked_at, created.last_used_at),
        (T0 + 1, None, None)
    );
    store
        .create_api_key(new_key("k2", "gh_bbbb", "bob", 0xB2), T0 + 2)
        .await?;
    store
        .create_api_key(new_key("k0", "gh_cccc", "alice", 0xC3), T0 + 3)
        .await?;

    let found = store
        .find_api_key("gh_aaaa")
        .await?
        .ok_or_else(|| not_found("key", "gh_aaaa"))?;
    assert_eq!((found.id.as_str(), found.user.as_str()), ("k1", "alice"));
    assert!(found.hash_matches(&[0xA1; 32]) && !found.hash_matches(&[0xB2; 32]));
    assert_eq!(found.scopes, ["orders:read", "orders:write"]);
    assert!(found.read_only);
    assert_eq!(found.expires_at, Some(T0 + 3600));
    assert_eq!(found.label.as_deref(), Some("ci deploy"));
    assert_eq!(found.created_at, T0 + 1);
    assert!(found.is_usable(T0 + 3599) && !found.is_usable(T0 + 3600));
    assert!(store.find_api_key("gh_zzzz").await?.is_none());
    assert!(
        store.find_api_key("k1").await?.is_none(),
        "lookup is by prefix, not id"
    );

    let ids =
        |keys: Vec<gatehouse_store::ApiKey>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_api_keys(Some("alice")).await?),
        ["k1", "k0"],
        "by created_at"
    );
    assert_eq!(ids(store.list_api_keys(None).await?), ["k1", "k2", "k0"]);
    assert!(store.list_api_keys(Some("nobody")).await?.is_empty());

    // Revocation: by id, then by prefix; the first revocation time is kept.
    assert!(store.revoke_api_key("k1", T0 + 100).await?);
    assert!(store.revoke_api_key("k1", T0 + 200).await?);
    assert!(store.revoke_api_key("gh_bbbb", T0 + 300).await?);
    assert!(!store.revoke_api_key("unknown", T0 + 300).await?);
    assert_eq!(revoked_at(store, "gh_aaaa").await?, Some(T0 + 100));
    assert_eq!(revoked_at(store, "gh_bbbb").await?, Some(T0 + 300));
    assert_eq!(
        revoked_at(store, "gh_cccc").await?,
        None,
        "other keys untouched"
    );
    assert_eq!(
        store.list_api_keys(None).await?.len(),
        3,
        "revoked keys stay listed"
    );

    // Use tracking never moves backwards.
    assert!(store.touch_api_key("k0", T0 + 50).await?);
    assert!(store.touch_api_key("k0", T0 + 40).await?);
    assert!(
        !store.touch_api_key("gh_cccc", T0 + 60).await?,
        "touch is by id"
    );
    let k0 = store
        .find_api_key("gh_cccc")
        .await?
        .ok_or_else(|| not_found("key", "gh_cccc"))?;
    assert_eq!(k0.last_used_at, Some(T0 + 50));
    Ok(())
}

pub async fn api_key_errors(store: &dyn Store) -> Outcome {
    store.create_user(new_user("alice"), T0).await?;
    store
        .create_api_key(new_key("k1", "gh_aaaa", "alice", 1), T0)
        .await?;
    assert_eq!(
        store
            .create_api_key(new_key("k1", "gh_other", "alice", 2), T0)
            .await
            .err(),
        Some(StoreError::Conflict {
            what: "api key",
            key: "k1".into()
        })
    );
    assert_eq!(
        store
            .create_api_key(new_key("k2", "gh_aaaa", "alice", 2), T0)
            .await
            .err(),
        Some(StoreError::Conflict {
            what: "api key prefix",
            key: "gh_aaaa".into()
        })
    );
    assert_eq!(
        store
            .create_api_key(new_key("k3", "gh_cccc", "ghost", 3), T0)
            .await
            .err(),
        Some(not_found("user", "ghost"))
    );
    let keys = store.list_api_keys(None).await?;
    assert_eq!(keys.len(), 1, "failed creates stored nothing");
    assert!(
        keys[0].hash_matches(&[1; 32]),
        "the conflicting create did not overwrite"
    );
    Ok(())
}

pub async fn delete_user_removes_keys(store: &dyn Store) -> Outcome {
    store.create_user(new_user("alice"), T0).await?;
    store.create_user(new_user("bob"), T0).await?;
    store
        .create_api_key(new_key("a1", "gh_a1", "alice", 1), T0)
        .await?;
    store
        .create_api_key(new_key("a2", "gh_a2", "alice", 2), T0)
        .await?;
    store
        .create_api_key(new_key("b1", "gh_b1", "bob", 3), T0)
        .await?;

    store.delete_user("alice").await?;
    assert!(store.find_api_key("gh_a1").await?.is_none());
    assert!(store.find_api_key("gh_a2").await?.is_none());
    assert!(store.list_api_keys(Some("alice")).await?.is_empty());
    assert!(
        store.find_api_key("gh_b1").await?.is_some(),
        "other users keep their keys"
    );

    // A new account with the old name does not inherit anything.
    store.create_user(new_user("alice"), T0 + 1).await?;
    assert!(store.list_api_keys(Some("alice")).await?.is_empty());
    store
        .create_api_key(new_key("a1", "gh_a1", "alice", 9), T0 + 1)
        .await?;
    Ok(())
}

fn signing_key(kid: &str, created_at: i64) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        algorithm: "EdDSA".into(),
        private_pkcs8: vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
        ],
        public: vec![0xEE; 32],
        created_at,
        retired_at: None,
    }
}

pub async fn signing_keys(store: &dyn Store) -> Outcome {
    assert!(store.list_signing_keys().await?.is_empty());
    let mut old = signing_key("2023-a", T0 - 100);
    old.retired_at = Some(T0 - 50);
    store.add_signing_key(signing_key("2024-b", T0)).await?;
    store.add_signing_key(old.clone()).await?;
    assert_eq!(
        store
            .add_signing_key(signing_key("2024-b", T0 + 1))
            .await
            .err(),
        Some(StoreError::Conflict {
            what: "signing key",
            key: "2024-b".into()
        })
    );

    let keys = store.list_signing_keys().await?;
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["2023-a", "2024-b"], "oldest first");
    let first = &keys[0];
    assert_eq!(first.algorithm, "EdDSA");
    assert_eq!(first.private_pkcs8, old.private_pkcs8);
    assert_eq!(first.public, old.public);
    assert_eq!(
        (first.created_at, first.retired_at),
        (T0 - 100, Some(T0 - 50))
    );
    assert_eq!((keys[1].created_at, keys[1].retired_at), (T0, None));

    assert!(store.retire_signing_key("2024-b", T0 + 10).await?);
    assert!(store.retire_signing_key("2024-b", T0 + 20).await?);
    assert!(!store.retire_signing_key("nope", T0).await?);
    let retired: Vec<Option<i64>> = store
        .list_signing_keys()
        .await?
        .iter()
        .map(|k| k.retired_at)
        .collect();
    assert_eq!(retired, [Some(T0 - 50), Some(T0 + 10)]);
    Ok(())
}

/// Nodes starting together on an empty store: each offers its own first key, exactly one
/// is stored, and later offers (also after a key of another algorithm, or a retired one)
/// store nothing while an unretired key exists.
pub async fn first_signing_key_is_stored_once(store: &dyn Store) -> Outcome {
    let mut master = signing_key("master", T0);
    master.algorithm = "master-secret".into();
    store.add_signing_key(master).await?;
    let (a, b, c, d) = tokio::join!(
        store.add_first_signing_key(signing_key("node-a", T0)),
        store.add_first_signing_key(signing_key("node-b", T0)),
        store.add_first_signing_key(signing_key("node-c", T0)),
        store.add_first_signing_key(signing_key("node-d", T0)),
    );
    let stored: Vec<bool> = [a?, b?, c?, d?].into();
    assert_eq!(
        stored.iter().filter(|s| **s).count(),
        1,
        "one offer wins: {stored:?}"
    );
    let eddsa: Vec<String> = store
        .list_signing_keys()
        .await?
        .into_iter()
        .filter(|k| k.algorithm == "EdDSA")
        .map(|k| k.kid)
        .collect();
    assert_eq!(eddsa.len(), 1, "{eddsa:?}");
    assert!(
        !store
            .add_first_signing_key(signing_key("late", T0 + 1))
            .await?
    );
    // Once every key is retired, a new first key is stored again.
    assert!(store.retire_signing_key(&eddsa[0], T0 + 2).await?);
    assert!(
        store
            .add_first_signing_key(signing_key("after-retire", T0 + 3))
            .await?
    );
    Ok(())
}

/// `Debug` of every record, as stored and as read back, names no secret.
pub async fn debug_redacts_secrets(store: &dyn Store) -> Outcome {
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$TOPSECRETDIGEST";
    let new = NewUser {
        password_hash: Some(hash.into()),
        ..new_user("dave")
    };
    let key_hash = [0x5A; 32];
    let new_key = NewApiKey {
        hash: key_hash,
        ..new_key("kd", "gh_dave", "dave", 0)
    };
    let private = b"PRIVATE-PKCS8-BYTES".to_vec();
    let signing = SigningKey {
        private_pkcs8: private.clone(),
        ..signing_key("kd", T0)
    };

    let user = store.create_user(new.clone(), T0).await?;
    let key = store.create_api_key(new_key.clone(), T0).await?;
    store.add_signing_key(signing.clone()).await?;
    let read_user = store
        .get_user("dave")
        .await?
        .ok_or_else(|| not_found("user", "dave"))?;
    let read_key = store
        .find_api_key("gh_dave")
        .await?
        .ok_or_else(|| not_found("key", "gh_dave"))?;
    let read_signing = store.list_signing_keys().await?;

    let forbidden = [
        "TOPSECRETDIGEST".to_owned(),
        format!("{:?}", key_hash.as_slice())
            .trim_matches(['[', ']'])
            .to_owned(),
        format!("{:?}", private.as_slice())
            .trim_matches(['[', ']'])
            .to_owned(),
        "PRIVATE-PKCS8".to_owned(),
    ];
    let printed = [
        format!("{new:?}"),
        format!("{user:?}"),
        format!("{read_user:?}"),
        format!("{new_key:?}"),
        format!("{key:?}"),
        format!("{read_key:?}"),
        format!("{signing:?}"),
        format!("{read_signing:?}"),
    ];
    for text in &printed {
        assert!(text.contains("<redacted>"), "no redaction marker in {text}");
        for secret in &forbidden {
            assert!(
                !text.contains(secret.as_str()),
                "{secret} printed in {text}"
            );
        }
    }
    assert!(
        printed[1].contains("dave") && printed[4].contains("gh_dave"),
        "public parts shown"
    );
    Ok(())
}

fn audit_record(
    time: i64,
    status: u16,
    error: Option<&str>,
    principal: Option<&str>,
) -> AuditRecord {
    AuditRecord {
        time,
        kind: AuditKind::Request,
        request_id: format!("req-{time}-{status}"),
        route: "admin".into(),
        method: "GET".into(),
        path: "/api/admin/x".into(),
        client_ip: Some("192.0.2.1".into()),
        principal: principal.map(Into::into),
        scheme: principal.map(|_| "bearer".into()),
        status,
        error: error.map(Into::into),
        hidden: status == 404,
        detail: "détail \"quoted\"".into(),
    }
}

pub async fn audit_append_and_query(store: &dyn Store) -> Outcome {
    assert!(store.query_audit(AuditQuery::default()).await?.is_empty());
    store.append_audit(Vec::new()).await?;
    let records = vec![
        audit_record(T0, 401, Some("missing_credentials"), None),
        audit_record(T0 + 10, 403, Some("insufficient_role"), Some("bob")),
        audit_record(T0 + 20, 404, Some("insufficient_role"), Some("bob")),
        audit_record(T0 + 30, 200, None, Some("alice")),
        AuditRecord {
            kind: AuditKind::Alert,
            client_ip: None,
            ..audit_record(T0 + 40, 0, Some("alert_rate"), None)
        },
    ];
    store.append_audit(records.clone()).await?;
    let all = store.query_audit(AuditQuery::default()).await?;
    let got: Vec<AuditRecord> = all.iter().map(|e| e.record.clone()).collect();
    assert_eq!(got, records, "round trip, in insertion order");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "seq increases");

    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    let by = |entries: Vec<gatehouse_store::AuditEntry>| -> Vec<i64> {
        entries.iter().map(|e| e.record.time - T0).collect()
    };
    assert_eq!(
        by(store.query_audit(q(|q| q.since = Some(T0 + 20))).await?),
        [20, 30, 40]
    );
    assert_eq!(
        by(store.query_audit(q(|q| q.status = Some(404))).await?),
        [20]
    );
    assert_eq!(
        by(store
            .query_audit(q(|q| q.reason = Some("insufficient_role".into())))
            .await?),
        [10, 20]
    );
    assert_eq!(
        by(store
            .query_audit(q(|q| q.user = Some("bob".into())))
            .await?),
        [10, 20]
    );
    assert_eq!(
        by(store
            .query_audit(q(|q| {
                q.user = Some("bob".into());
                q.status = Some(403);
            }))
            .await?),
        [10]
    );
    // The newest `limit`, oldest first.
    assert_eq!(by(store.query_audit(q(|q| q.limit = 2)).await?), [30, 40]);
    // A cursor returns only what came after it.
    let third = all[2].seq;
    let after = AuditQuery {
        after_seq: Some(third),
        ..AuditQuery::default()
    };
    assert_eq!(by(store.query_audit(after.clone()).await?), [30, 40]);
    store
        .append_audit(vec![audit_record(
            T0 + 50,
            429,
            Some("too_many_attempts"),
            None,
        )])
        .await?;
    assert_eq!(by(store.query_audit(after).await?), [30, 40, 50]);

    // The admin API's filters: a time range, route, client address, request id, kind, and a
    // cursor backwards (`before_seq`); `oldest_first` takes the oldest `limit` instead.
    assert_eq!(
        by(store
            .query_audit(q(|q| {
                q.since = Some(T0 + 10);
                q.until = Some(T0 + 30);
            }))
            .await?),
        [10, 20]
    );
    assert_eq!(
        by(store
            .query_audit(q(|q| q.kind = Some(AuditKind::Alert)))
            .await?),
        [40]
    );
    assert_eq!(
        by(store
            .query_audit(q(|q| q.client_ip = Some("192.0.2.1".into())))
            .await?),
        [0, 10, 20, 30, 50]
    );
    assert!(
        store
            .query_audit(q(|q| q.route = Some("nothere".into())))
            .await?
            .is_empty()
    );
    assert_eq!(
        by(store
            .query_audit(q(|q| q.request_id = Some(format!("req-{}-403", T0 + 10))))
            .await?),
        [10]
    );
    let before = AuditQuery {
        before_seq: Some(third),
        limit: 1,
        ..AuditQuery::default()
    };
    assert_eq!(by(store.query_audit(before).await?), [10]);
    let oldest = AuditQuery {
        oldest_first: true,
        after_seq: Some(all[0].seq),
        limit: 2,
        ..AuditQuery::default()
    };
    assert_eq!(by(store.query_audit(oldest).await?), [10, 20]);
    Ok(())
}

/// Per-minute rollups: counts of the same minute, route, status and reason add up (as
/// several nodes report them), ranges and routes filter, old minutes are purged.
pub async fn stats_add_up_and_purge(store: &dyn Store) -> Outcome {
    use gatehouse_store::{StatRow, StatsQuery};
    let m0 = T0 - T0 % 60;
    let row = |minute: i64, route: &str, status: u16, reason: &str, count: u64| StatRow {
        minute,
        route: route.into(),
        status,
        reason: reason.into(),
        count,
    };
    store.add_stats(Vec::new()).await?;
    // One node, then another, report the same minute.
    store
        .add_stats(vec![
            row(m0, "admin", 403, "insufficient_role", 3),
            row(m0, "admin", 401, "missing_credentials", 1),
            row(m0 + 60, "posts", 200, "allowed", 10),
        ])
        .await?;
    store
        .add_stats(vec![
            row(m0, "admin", 403, "insufficient_role", 4),
            row(m0 + 120, "posts", 401, "invalid_token", 2),
        ])
        .await?;
    let all = |since, until| StatsQuery {
        since,
        until,
        route: None,
    };
    assert_eq!(
        store.query_stats(all(m0, m0 + 180)).await?,
        [
            row(m0, "admin", 401, "missing_credentials", 1),
            row(m0, "admin", 403, "insufficient_role", 7),
            row(m0 + 60, "posts", 200, "allowed", 10),
            row(m0 + 120, "posts", 401, "invalid_token", 2),
        ]
    );
    assert_eq!(
        store.query_stats(all(m0 + 60, m0 + 120)).await?,
        [row(m0 + 60, "posts", 200, "allowed", 10)]
    );
    let posts = StatsQuery {
        route: Some("posts".into()),
        ..all(m0, m0 + 180)
    };
    assert_eq!(store.query_stats(posts).await?.len(), 2);
    assert_eq!(store.purge_stats(m0 + 60).await?, 2);
    assert_eq!(store.query_stats(all(m0, m0 + 180)).await?.len(), 2);
    Ok(())
}
