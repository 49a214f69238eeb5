//! Contract of sessions, refresh-token rotation (crates.md §3.3) and the access-token
//! revocation list (design §2 row 10).

use gatehouse_store::{
    NewSession, NewUser, Revocation, RevocationKind, RotateOutcome, Session, Store, StoreError,
};

use super::{Outcome, T0, not_found};

pub(super) const TTL: i64 = 3600;

/// A distinct refresh-token hash per `n`.
pub(super) fn h(n: u8) -> [u8; 32] {
    let mut hash = [0x5E; 32];
    hash[0] = n;
    hash
}

pub(super) fn user(name: &str) -> NewUser {
    NewUser {
        name: name.into(),
        ..NewUser::default()
    }
}

pub(super) fn new_session(id: &str, user: &str, first: u8) -> NewSession {
    NewSession {
        id: id.into(),
        user: user.into(),
        acr: "pwd".into(),
        auth_time: T0,
        amr: vec!["pwd".into(), "otp".into()],
        expires_at: T0 + TTL,
        first_refresh: h(first),
    }
}

fn token(jti: &str, expires_at: i64) -> Revocation {
    Revocation {
        id: jti.into(),
        kind: RevocationKind::Token,
        expires_at,
        reason: "logout".into(),
    }
}

pub(super) async fn session(store: &dyn Store, id: &str) -> Result<Session, StoreError> {
    store
        .get_session(id)
        .await?
        .ok_or_else(|| not_found("session", id))
}

pub(super) fn rotated(outcome: RotateOutcome) -> Session {
    match outcome {
        RotateOutcome::Rotated(session) => session,
        other => panic!("expected Rotated, got {other:?}"),
    }
}

/// Every entry of the revocation list from the start.
async fn all_revocations(store: &dyn Store) -> Result<Vec<Revocation>, StoreError> {
    Ok(store.revocations_since(0).await?.0)
}

pub async fn sessions_create_get_list(store: &dyn Store) -> Outcome {
    store.create_user(user("alice"), T0).await?;
    store.create_user(user("bob"), T0).await?;
    let created = store
        .create_session(new_session("s1", "alice", 1), T0 + 1)
        .await?;
    let expected = Session {
        id: "s1".into(),
        user: "alice".into(),
        acr: "pwd".into(),
        auth_time: T0,
        amr: vec!["pwd".into(), "otp".into()],
        created_at: T0 + 1,
        expires_at: T0 + TTL,
        revoked_at: None,
        revoke_reason: None,
        last_refresh_at: None,
    };
    assert_eq!(created, expected);
    assert_eq!(store.get_session("s1").await?, Some(expected));
    assert_eq!(store.get_session("nope").await?, None);

    store
        .create_session(new_session("s0", "alice", 2), T0 + 2)
        .await?;
    store
        .create_session(new_session("s2", "bob", 3), T0 + 3)
        .await?;
    assert_eq!(
        store
            .create_session(new_session("s1", "bob", 4), T0)
            .await
            .err(),
        Some(StoreError::Conflict {
            what: "session",
            key: "s1".into()
        })
    );
    assert_eq!(
        store
            .create_session(new_session("s9", "ghost", 5), T0)
            .await
            .err(),
        Some(not_found("user", "ghost"))
    );
    assert!(matches!(
        store.create_session(new_session("s8", "bob", 1), T0).await,
        Err(StoreError::Conflict {
            what: "refresh token",
            ..
        })
    ));
    assert_eq!(
        store.get_session("s8").await?,
        None,
        "no half-created session"
    );

    let ids = |list: Vec<Session>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_sessions(Some("alice"), false).await?),
        ["s1", "s0"]
    );
    assert_eq!(
        ids(store.list_sessions(None, false).await?),
        ["s1", "s0", "s2"]
    );
    assert!(store.list_sessions(Some("nobody"), true).await?.is_empty());

    assert!(store.revoke_session("s0", "logout", T0 + 10).await?);
    assert_eq!(
        ids(store.list_sessions(Some("alice"), false).await?),
        ["s1"]
    );
    assert_eq!(
        ids(store.list_sessions(Some("alice"), true).await?),
        ["s1", "s0"]
    );
    assert_eq!(ids(store.list_sessions(None, false).await?), ["s1", "s2"]);
    Ok(())
}

pub async fn refresh_rotates_twice(store: &dyn Store) -> Outcome {
    store.create_user(user("alice"), T0).await?;
    store
        .create_session(new_session("s1", "alice", 1), T0)
        .await?;

    let first = rotated(
        store
            .rotate_refresh(h(1), h(2), T0 + 60, T0 + 60 + TTL)
            .await?,
    );
    assert_eq!(first.id, "s1");
    assert_eq!(first.last_refresh_at, Some(T0 + 60));
    assert_eq!(
        first.expires_at,
        T0 + 60 + TTL,
        "the session follows its current token"
    );
    assert_eq!(first.created_at, T0);

    let second = rotated(
        store
            .rotate_refresh(h(2), h(3), T0 + 120, T0 + 120 + TTL)
            .await?,
    );
    assert_eq!(
        (second.last_refresh_at, second.expires_at),
        (Some(T0 + 120), T0 + 120 + TTL)
    );
    assert_eq!(session(store, "s1").await?, second);
    assert!(second.is_active(T0 + 120));
    assert!(
        all_revocations(store).await?.is_empty(),
        "rotation revokes nothing"
    );

    // `next` must be new; a refused rotation changes nothing.
    assert!(matches!(
        store
            .rotate_refresh(h(3), h(1), T0 + 130, T0 + 130 + TTL)
            .await,
        Err(StoreError::Conflict {
            what: "refresh token",
            ..
        })
    ));
    rotated(
        store
            .rotate_refresh(h(3), h(4), T0 + 140, T0 + 140 + TTL)
            .await?,
    );
    Ok(())
}

pub async fn refresh_reuse_revokes_family(store: &dyn Store) -> Outcome {
    store.create_user(user("alice"), T0).await?;
    store
        .create_session(new_session("s1", "alice", 1), T0)
        .await?;
    store
        .create_session(new_session("other", "alice", 9), T0)
        .await?;
    rotated(
        store
            .rotate_refresh(h(1), h(2), T0 + 60, T0 + 60 + TTL)
            .await?,
    );

    let RotateOutcome::Reused { session } = store
        .rotate_refresh(h(1), h(3), T0 + 70, T0 + 70 + TTL)
        .await?
    else {
        panic!("reuse of a used token was not detected");
    };
    assert_eq!(session.id, "s1");
    assert_eq!(session.revoked_at, Some(T0 + 70));
    assert_eq!(
        session.revoke_reason.as_deref(),
        Some("refresh token reuse")
    );
    assert_eq!(store.get_session("s1").await?, Some(session.clone()));

    // The legitimate holder's current token is dead too, and `h(3)` was never stored.
    assert_eq!(
        store
            .rotate_refresh(h(2), h(4), T0 + 80, T0 + 80 + TTL)
            .await?,
        RotateOutcome::Revoked
    );
    assert_eq!(
        store
            .rotate_refresh(h(3), h(5), T0 + 80, T0 + 80 + TTL)
            .await?,
        RotateOutcome::Unknown
    );
    // A second replay keeps the first revocation.
    let again = store
        .rotate_refresh(h(1), h(6), T0 + 90, T0 + 90 + TTL)
        .await?;
    assert_eq!(again, RotateOutcome::Reused { session });

    assert_eq!(
        all_revocations(store).await?,
        [Revocation {
            id: "s1".into(),
            kind: RevocationKind::Session,
            expires_at: T0 + 60 + TTL,
            reason: "refresh token reuse".into(),
        }],
        "access tokens of the family die at once, once"
    );
    rotated(
        store
            .rotate_refresh(h(9), h(10), T0 + 90, T0 + 90 + TTL)
            .await?,
    );
    Ok(())
}

pub async fn refresh_expired_and_unknown(store: &dyn Store) -> Outcome {
    store.create_user(user("alice"), T0).await?;
    store
        .create_session(new_session("s1", "alice", 1), T0)
        .await?;
    assert_eq!(
        store
            .rotate_refresh(h(1), h(2), T0 + TTL, T0 + 2 * TTL)
            .await?,
        RotateOutcome::Expired,
        "expires_at is the first unusable second"
    );
    assert_eq!(
        store.rotate_refresh([0; 32], h(3), T0, T0 + TTL).await?,
        RotateOutcome::Unknown
    );
    let s1 = session(store, "s1").await?;
    assert_eq!(
        (s1.revoked_at, s1.last_refresh_at, s1.expires_at),
        (None, None, T0 + TTL),
        "failed rotations change nothing"
    );
    // One second earlier it still rotates: the expired attempt left the token unused.
    rotated(
        store
            .rotate_refresh(h(1), h(2), T0 + TTL - 1, T0 + TTL + 10)
            .await?,
    );
    assert_eq!(
        store
            .rotate_refresh(h(2), h(4), T0 + TTL + 10, T0 + 3 * TTL)
            .await?,
        RotateOutcome::Expired
    );

    // A revoked session's current token answers `Revoked`.
    store
        .create_session(new_session("s2", "alice", 7), T0)
        .await?;
    assert!(store.revoke_session("s2", "logout", T0 + 5).await?);
    assert_eq!(
        store.rotate_refresh(h(7), h(8), T0 + 6, T0 + TTL).await?,
        RotateOutcome::Revoked
    );
    Ok(())
}

/// Eight clients present the same token at once. Rotations serialize: one wins, the seven
/// others present a token that is now used, which is indistinguishable from a replay by a
/// thief, so the family is revoked. Conservative and intended: a client must not refresh
/// the same token in parallel.
pub async fn refresh_concurrent_rotation(store: &dyn Store) -> Outcome {
    store.create_user(user("alice"), T0).await?;
    store
        .create_session(new_session("s1", "alice", 1), T0)
        .await?;
    let go = |n: u8| store.rotate_refresh(h(1), h(10 + n), T0 + 60, T0 + 60 + TTL);
    let outcomes = tokio::join!(go(0), go(1), go(2), go(3), go(4), go(5), go(6), go(7));
    let outcomes = [
        outcomes.0?,
        outcomes.1?,
        outcomes.2?,
        outcomes.3?,
        outcomes.4?,
        outcomes.5?,
        outcomes.6?,
        outcomes.7?,
    ];
    let winners: Vec<u8> = (0..8)
        .filter(|&n| matches!(outcomes[usize::from(n)], RotateOutcome::Rotated(_)))
        .collect();
    let reused = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Reused { .. }))
        .count();
    assert_eq!((winners.len(), reused), (1, 7), "{outcomes:?}");

    let s1 = session(store, "s1").await?;
    assert_eq!(s1.revoke_reason.as_deref(), Some("refresh token reuse"));
    let winner_token = h(10 + winners[0]);
    assert_eq!(
        store
            .rotate_refresh(winner_token, h(99), T0 + 70, T0 + 70 + TTL)
            .await?,
        RotateOutcome::Revoked
    );
    for loser in (0..8).filter(|n| *n != winners[0]) {
        assert_eq!(
            store
                .rotate_refresh(h(10 + loser), h(98), T0 + 70, T0 + TTL)
                .await?,
            RotateOutcome::Unknown,
            "a losing rotation stored its token"
        );
    }
    Ok(())
}

pub async fn session_step_up(store: &dyn Store) -> Outcome {
    store.create_user(user("alice"), T0).await?;
    store
        .create_session(new_session("s1", "alice", 1), T0)
        .await?;
    assert!(store.set_session_acr("s1", "mfa", T0 + 30).await?);
    let s1 = session(store, "s1").await?;
    assert_eq!((s1.acr.as_str(), s1.auth_time), ("mfa", T0 + 30));
    assert_eq!(s1.created_at, T0, "step-up keeps the session");
    let after = rotated(store.rotate_refresh(h(1), h(2), T0 + 40, T0 + TTL).await?);
    assert_eq!(after.acr, "mfa", "rotation keeps the raised acr");

    assert!(!store.set_session_acr("nope", "mfa", T0).await?);
    store.revoke_session("s1", "logout", T0 + 50).await?;
    assert!(!store.set_session_acr("s1", "mfa", T0 + 60).await?);
    assert_eq!(session(store, "s1").await?.auth_time, T0 + 30);
    Ok(())
}

pub async fn revoke_sessions_feed_the_revocation_list(store: &dyn Store) -> Outcome {
    store.create_user(user("alice"), T0).await?;
    store.create_user(user("bob"), T0).await?;
    for (id, who, n, at) in [
        ("a2", "alice", 1, T0 + 2),
        ("a1", "alice", 2, T0 + 1),
        ("a3", "alice", 3, T0 + 3),
        ("b1", "bob", 4, T0),
    ] {
        store.create_session(new_session(id, who, n), at).await?;
    }
    assert!(store.revoke_session("a3", "logout", T0 + 10).await?);
    assert!(store.revoke_session("a3", "admin", T0 + 20).await?);
    assert!(!store.revoke_session("nope", "logout", T0 + 20).await?);
    let a3 = session(store, "a3").await?;
    assert_eq!(
        (a3.revoked_at, a3.revoke_reason.as_deref()),
        (Some(T0 + 10), Some("logout")),
        "the first revocation is kept"
    );

    let revoked = store
        .revoke_user_sessions("alice", "password changed", T0 + 30)
        .await?;
    assert_eq!(revoked, ["a1", "a2"], "newly revoked only, by created_at");
    assert!(
        store
            .revoke_user_sessions("alice", "again", T0 + 40)
            .await?
            .is_empty()
    );
    assert!(
        store
            .revoke_user_sessions("nobody", "x", T0)
            .await?
            .is_empty()
    );
    assert!(
        session(store, "b1").await?.is_active(T0 + 30),
        "bob untouched"
    );
    let a1 = session(store, "a1").await?;
    assert_eq!(
        (a1.revoked_at, a1.revoke_reason.as_deref()),
        (Some(T0 + 30), Some("password changed"))
    );

    let entry = |id: &str, reason: &str| Revocation {
        id: id.into(),
        kind: RevocationKind::Session,
        expires_at: T0 + TTL,
        reason: reason.into(),
    };
    assert_eq!(
        all_revocations(store).await?,
        [
            entry("a3", "logout"),
            entry("a1", "password changed"),
            entry("a2", "password changed")
        ]
    );
    Ok(())
}

pub async fn revocation_cursor(store: &dyn Store) -> Outcome {
    let (empty, start) = store.revocations_since(0).await?;
    assert!(empty.is_empty());
    assert_eq!(start, 0, "nothing new keeps the cursor");

    assert!(store.revoke_token(token("j1", T0 + 100), T0).await?);
    assert!(store.revoke_token(token("j2", T0 + 5), T0).await?);
    let (batch, c1) = store.revocations_since(start).await?;
    assert_eq!(batch, [token("j1", T0 + 100), token("j2", T0 + 5)]);
    assert_eq!(store.revocations_since(c1).await?, (Vec::new(), c1));

    // Idempotent: an existing entry is neither repeated nor changed.
    assert!(!store.revoke_token(token("j1", T0 + 999), T0).await?);
    // What is dead already is not stored.
    assert!(!store.revoke_token(token("j-old", T0 - 1), T0).await?);
    // The same id as another kind is a different entry.
    let session_j1 = Revocation {
        kind: RevocationKind::Session,
        ..token("j1", T0 + 50)
    };
    assert!(store.revoke_token(session_j1.clone(), T0).await?);
    assert!(store.revoke_token(token("j3", T0 + 100), T0).await?);
    let (batch, c2) = store.revocations_since(c1).await?;
    assert_eq!(batch, [session_j1, token("j3", T0 + 100)]);
    assert!(c2 > c1);

    // Purging the newest entries never lets a cursor skip a later one.
    assert!(store.revoke_token(token("j4", T0 + 10), T0).await?);
    let (batch, c3) = store.revocations_since(c2).await?;
    assert_eq!(batch, [token("j4", T0 + 10)]);
    assert_eq!(
        store.purge_revocations(T0 + 60).await?,
        3,
        "j2, j4 and the session entry"
    );
    assert!(store.revoke_token(token("j5", T0 + 100), T0 + 60).await?);
    assert_eq!(
        store.revocations_since(c3).await?.0,
        [token("j5", T0 + 100)]
    );
    let ids: Vec<String> = all_revocations(store)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["j1", "j3", "j5"]);
    Ok(())
}

pub async fn revocation_purge(store: &dyn Store) -> Outcome {
    store.revoke_token(token("a", T0 + 10), T0).await?;
    store.revoke_token(token("b", T0 + 20), T0).await?;
    store.revoke_token(token("c", T0 + 30), T0).await?;
    assert_eq!(
        store.purge_revocations(T0 + 10).await?,
        0,
        "expires_at == now is kept"
    );
    assert_eq!(store.purge_revocations(T0 + 21).await?, 2);
    assert_eq!(store.purge_revocations(T0 + 21).await?, 0);
    assert_eq!(all_revocations(store).await?, [token("c", T0 + 30)]);

    // Sessions: only those past their end go, revoked or not, with their tokens.
    store.create_user(user("alice"), T0).await?;
    store
        .create_session(new_session("old", "alice", 1), T0)
        .await?;
    store
        .create_session(new_session("live", "alice", 2), T0)
        .await?;
    store
        .create_session(new_session("gone", "alice", 3), T0)
        .await?;
    store.revoke_session("gone", "logout", T0 + 1).await?;
    rotated(
        store
            .rotate_refresh(h(2), h(4), T0 + 10, T0 + 10 * TTL)
            .await?,
    );
    assert_eq!(
        store.purge_sessions(T0 + TTL).await?,
        0,
        "expires_at == now is kept"
    );
    assert_eq!(store.purge_sessions(T0 + TTL + 1).await?, 2);
    let left: Vec<String> = store
        .list_sessions(None, true)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, ["live"]);
    assert_eq!(
        store.rotate_refresh(h(1), h(5), T0 + 1, T0 + TTL).await?,
        RotateOutcome::Unknown,
        "purged tokens are gone"
    );
    rotated(
        store
            .rotate_refresh(h(4), h(6), T0 + TTL + 2, T0 + 20 * TTL)
            .await?,
    );
    Ok(())
}
