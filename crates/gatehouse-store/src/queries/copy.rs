//! Export and import of every record (`gatehouse copy`, design §5: a single-node install
//! moving to a cluster without losing a record). Shared by both backends (see
//! `src/queries.rs`), so any pair of backends copies into each other.
//!
//! The export reads every table but the audit trail in one read-only snapshot, so sessions,
//! their refresh tokens and the users they belong to agree with each other; the audit trail
//! is read in pages by `seq`. The import writes everything in one transaction on the target:
//! it refuses a target holding any record, keeps every id, time, hash and sequence number,
//! moves the target's sequences past the source's, and before committing compares the rows
//! of every table with the source's counts. Any failure leaves the target as it was.

use sqlx::query_builder::Separated;
use sqlx::{Pool, QueryBuilder, Row};

use super::audit::{self, audit_columns};
use super::dialect::{
    Connection, Db, SEQUENCE_HIGH, begin_snapshot, begin_write, bytewise, lock_for_import,
    raise_sequence,
};
use super::keys::{self, api_key_columns, signing_key_columns};
use super::revocations::{self, revocation_columns};
use super::sessions::{self, session_columns};
use super::stats;
use super::users::{self, user_columns};
use crate::error::StoreError;
use crate::model::{
    AccountStatus, AuditEntry, DigestAlgorithm, DigestHa1, DigestSecret, Export, RecordCounts,
    RefreshToken, UserRecord,
};
use crate::shared::{encode_attributes, encode_list};
use crate::store::Store;

type DbRow = <Db as sqlx::Database>::Row;

/// Audit entries per page read from the source.
const AUDIT_PAGE: u32 = 5_000;

/// Rows per `INSERT`: 14 columns (the widest table) × 1000 stays under SQLite's 32 766 and
/// PostgreSQL's 65 535 bound parameters per statement.
const INSERT_BATCH: usize = 1_000;

macro_rules! refresh_token_columns {
    () => {
        "hash, session_id, generation, parent_hash, created_at, expires_at, used_at"
    };
}

macro_rules! digest_columns {
    () => {
        "user_name, realm, algorithm, ha1, userhash"
    };
}

/// Every table but the audit trail, in one snapshot.
pub(super) async fn export(pool: &Pool<Db>) -> Result<Export, StoreError> {
    let err = |e| StoreError::db("export", e);
    let mut tx = begin_snapshot(pool).await.map_err(err)?;
    let export = Export {
        users: read_all(
            &mut tx,
            concat!(
                "SELECT ",
                user_columns!(),
                ", mfa_last_step FROM users ORDER BY name",
                bytewise!()
            ),
            |row| {
                let user = users::from_row(row)?;
                let mfa_last_step = row
                    .try_get("mfa_last_step")
                    .map_err(|e| StoreError::corrupt("user", &user.name, e))?;
                Ok(UserRecord {
                    user,
                    mfa_last_step,
                })
            },
        )
        .await?,
        api_keys: read_all(
            &mut tx,
            concat!(
                "SELECT ",
                api_key_columns!(),
                " FROM api_keys ORDER BY id",
                bytewise!()
            ),
            keys::api_key_from_row,
        )
        .await?,
        signing_keys: read_all(
            &mut tx,
            concat!(
                "SELECT ",
                signing_key_columns!(),
                " FROM signing_keys ORDER BY kid",
                bytewise!()
            ),
            keys::signing_key_from_row,
        )
        .await?,
        sessions: read_all(
            &mut tx,
            concat!(
                "SELECT ",
                session_columns!(),
                " FROM sessions ORDER BY id",
                bytewise!()
            ),
            sessions::from_row,
        )
        .await?,
        refresh_tokens: read_all(
            &mut tx,
            concat!(
                "SELECT ",
                refresh_token_columns!(),
                " FROM refresh_tokens ORDER BY hash"
            ),
            refresh_token_from_row,
        )
        .await?,
        revocations: read_all(
            &mut tx,
            concat!(
                "SELECT ",
                revocation_columns!(),
                " FROM revocations ORDER BY seq"
            ),
            revocations::entry_from_row,
        )
        .await?,
        digest_secrets: read_all(
            &mut tx,
            concat!(
                "SELECT ",
                digest_columns!(),
                " FROM digest_secrets ORDER BY user_name",
                bytewise!(),
                ", realm",
                bytewise!(),
                ", algorithm",
                bytewise!()
            ),
            digest_secret_from_row,
        )
        .await?,
        revocation_seq: sequence_high(&mut tx, "revocations").await?,
        audit_seq: sequence_high(&mut tx, "audit").await?,
        decision_stats: read_all(
            &mut tx,
            concat!("SELECT ", stats::stat_columns!(), " FROM decision_stats"),
            stats::from_row,
        )
        .await?,
    };
    tx.rollback().await.map_err(err)?;
    Ok(export)
}

/// One page of the audit trail, for [`Store::export_audit`].
pub(super) async fn export_audit(
    pool: &Pool<Db>,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    audit::page(pool, after_seq, limit).await
}

/// Rows per table.
pub(super) async fn count_records(pool: &Pool<Db>) -> Result<RecordCounts, StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| StoreError::db("count records", e))?;
    count(&mut conn).await
}

/// Copies every record of `source` into this (empty) store, in one transaction.
pub(super) async fn import(
    pool: &Pool<Db>,
    source: &dyn Store,
) -> Result<RecordCounts, StoreError> {
    let err = |e| StoreError::db("import", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    lock_for_import(&mut tx).await?;
    let present = count(&mut tx).await?;
    if !present.is_empty() {
        tx.rollback().await.map_err(err)?;
        return Err(StoreError::NotEmpty {
            holds: present.summary(),
        });
    }
    // On any error below, dropping `tx` rolls everything back.
    let export = source.export().await?;
    let mut copied = write(&mut tx, &export).await?;
    let mut after = 0;
    loop {
        let page = source.export_audit(after, AUDIT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        insert_audit(&mut tx, &page).await?;
        copied.audit += page.len() as u64;
    }
    let revocation_seq = export
        .revocations
        .iter()
        .map(|r| r.seq)
        .fold(export.revocation_seq, i64::max);
    raise_sequence(&mut tx, "revocations", revocation_seq).await?;
    raise_sequence(&mut tx, "audit", export.audit_seq.max(after)).await?;

    let expected = source.count_records().await?;
    let stored = count(&mut tx).await?;
    let differences: Vec<String> = expected
        .tables()
        .iter()
        .zip(copied.tables().iter().zip(stored.tables()))
        .filter(|&(&(_, want), (&(_, copied), (_, stored)))| want != copied || want != stored)
        .map(|((table, want), ((_, copied), (_, stored)))| {
            format!("{table}: source {want}, copied {copied}, stored {stored}")
        })
        .collect();
    if !differences.is_empty() {
        tx.rollback().await.map_err(err)?;
        return Err(StoreError::CopyMismatch(differences.join("; ")));
    }
    tx.commit().await.map_err(err)?;
    Ok(stored)
}

/// Inserts every table of `export` (owners first) and says how many rows each got; the
/// audit trail is left to [`import`], which pages it from the source.
async fn write(conn: &mut Connection, export: &Export) -> Result<RecordCounts, StoreError> {
    insert(
        conn,
        concat!("INSERT INTO users (", user_columns!(), ", mfa_last_step) "),
        &export.users,
        |b, r| {
            let (suspended_at, reason) = match &r.user.status {
                AccountStatus::Active => (None, None),
                AccountStatus::Suspended { at, reason } => (Some(*at), Some(reason.as_str())),
            };
            b.push_bind(&r.user.name)
                .push_bind(&r.user.password_hash)
                .push_bind(encode_list(&r.user.roles)?)
                .push_bind(&r.user.tenant)
                .push_bind(suspended_at)
                .push_bind(reason)
                .push_bind(r.user.created_at)
                .push_bind(&r.user.mfa_secret)
                .push_bind(encode_attributes(&r.user.attributes)?)
                .push_bind(r.mfa_last_step);
            Ok(())
        },
    )
    .await?;
    insert(
        conn,
        concat!("INSERT INTO api_keys (", api_key_columns!(), ") "),
        &export.api_keys,
        |b, k| {
            b.push_bind(&k.id)
                .push_bind(&k.prefix)
                .push_bind(k.hash.as_slice())
                .push_bind(&k.user)
                .push_bind(encode_list(&k.scopes)?)
                .push_bind(k.read_only)
                .push_bind(&k.label)
                .push_bind(k.expires_at)
                .push_bind(k.revoked_at)
                .push_bind(k.created_at)
                .push_bind(k.last_used_at);
            Ok(())
        },
    )
    .await?;
    insert(
        conn,
        concat!("INSERT INTO signing_keys (", signing_key_columns!(), ") "),
        &export.signing_keys,
        |b, k| {
            b.push_bind(&k.kid)
                .push_bind(&k.algorithm)
                .push_bind(&k.private_pkcs8)
                .push_bind(&k.public)
                .push_bind(k.created_at)
                .push_bind(k.retired_at);
            Ok(())
        },
    )
    .await?;
    insert(
        conn,
        concat!("INSERT INTO sessions (", session_columns!(), ") "),
        &export.sessions,
        |b, s| {
            b.push_bind(&s.id)
                .push_bind(&s.user)
                .push_bind(&s.acr)
                .push_bind(s.auth_time)
                .push_bind(s.created_at)
                .push_bind(s.expires_at)
                .push_bind(s.revoked_at)
                .push_bind(&s.revoke_reason)
                .push_bind(s.last_refresh_at)
                .push_bind(encode_list(&s.amr)?);
            Ok(())
        },
    )
    .await?;
    insert(
        conn,
        concat!(
            "INSERT INTO refresh_tokens (",
            refresh_token_columns!(),
            ") "
        ),
        &export.refresh_tokens,
        |b, t| {
            b.push_bind(t.hash.as_slice())
                .push_bind(&t.session_id)
                .push_bind(t.generation)
                .push_bind(t.parent_hash.as_ref().map(|h| h.as_slice()))
                .push_bind(t.created_at)
                .push_bind(t.expires_at)
                .push_bind(t.used_at);
            Ok(())
        },
    )
    .await?;
    insert(
        conn,
        concat!("INSERT INTO revocations (", revocation_columns!(), ") "),
        &export.revocations,
        |b, r| {
            b.push_bind(r.seq)
                .push_bind(r.revocation.kind.as_str())
                .push_bind(&r.revocation.id)
                .push_bind(r.revocation.expires_at)
                .push_bind(&r.revocation.reason);
            Ok(())
        },
    )
    .await?;
    insert(
        conn,
        concat!("INSERT INTO digest_secrets (", digest_columns!(), ") "),
        &export.digest_secrets,
        |b, d| {
            b.push_bind(&d.user)
                .push_bind(&d.realm)
                .push_bind(d.algorithm.as_str())
                .push_bind(&d.secret.ha1)
                .push_bind(&d.secret.userhash);
            Ok(())
        },
    )
    .await?;
    insert(
        conn,
        concat!("INSERT INTO decision_stats (", stats::stat_columns!(), ") "),
        &export.decision_stats,
        |b, r| {
            b.push_bind(r.minute)
                .push_bind(&r.route)
                .push_bind(i32::from(r.status))
                .push_bind(&r.reason)
                .push_bind(i64::try_from(r.count).unwrap_or(i64::MAX));
            Ok(())
        },
    )
    .await?;
    let rows = |n: usize| n as u64;
    Ok(RecordCounts {
        users: rows(export.users.len()),
        api_keys: rows(export.api_keys.len()),
        signing_keys: rows(export.signing_keys.len()),
        sessions: rows(export.sessions.len()),
        refresh_tokens: rows(export.refresh_tokens.len()),
        revocations: rows(export.revocations.len()),
        digest_secrets: rows(export.digest_secrets.len()),
        audit: 0,
        decision_stats: rows(export.decision_stats.len()),
    })
}

async fn insert_audit(conn: &mut Connection, page: &[AuditEntry]) -> Result<(), StoreError> {
    insert(
        conn,
        concat!("INSERT INTO audit (", audit_columns!(), ") "),
        page,
        |b, e| {
            let r = &e.record;
            b.push_bind(e.seq)
                .push_bind(r.time)
                .push_bind(r.kind.as_str())
                .push_bind(&r.request_id)
                .push_bind(&r.route)
                .push_bind(&r.method)
                .push_bind(&r.path)
                .push_bind(&r.client_ip)
                .push_bind(&r.principal)
                .push_bind(&r.scheme)
                .push_bind(i32::from(r.status))
                .push_bind(&r.error)
                .push_bind(r.hidden)
                .push_bind(&r.detail);
            Ok(())
        },
    )
    .await
}

/// `head` (`INSERT INTO t (columns) `) followed by `VALUES` rows pushed by `push`, in
/// statements of [`INSERT_BATCH`] rows.
async fn insert<T>(
    conn: &mut Connection,
    head: &'static str,
    rows: &[T],
    mut push: impl FnMut(&mut Separated<'_, Db, &'static str>, &T) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(INSERT_BATCH) {
        let mut builder = QueryBuilder::<Db>::new(head);
        let mut pushed = Ok(());
        builder.push_values(chunk, |mut b, row| {
            if pushed.is_ok() {
                pushed = push(&mut b, row);
            }
        });
        pushed?;
        builder
            .build()
            .execute(&mut *conn)
            .await
            .map_err(|e| StoreError::db("import", e))?;
    }
    Ok(())
}

/// The highest `seq` ever handed out in `table` (see the dialect's `SEQUENCE_HIGH`).
async fn sequence_high(conn: &mut Connection, table: &str) -> Result<i64, StoreError> {
    sqlx::query_scalar(SEQUENCE_HIGH)
        .bind(table)
        .fetch_one(conn)
        .await
        .map_err(|e| StoreError::db("read sequence", e))
}

/// Runs `sql` and maps every row.
async fn read_all<T>(
    conn: &mut Connection,
    sql: &'static str,
    map: impl Fn(&DbRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    sqlx::query(sql)
        .fetch_all(conn)
        .await
        .map_err(|e| StoreError::db("export", e))?
        .iter()
        .map(map)
        .collect()
}

/// Rows per table, in one statement (so one snapshot on both backends).
async fn count(conn: &mut Connection) -> Result<RecordCounts, StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM users) AS users,
                (SELECT count(*) FROM api_keys) AS api_keys,
                (SELECT count(*) FROM signing_keys) AS signing_keys,
                (SELECT count(*) FROM sessions) AS sessions,
                (SELECT count(*) FROM refresh_tokens) AS refresh_tokens,
                (SELECT count(*) FROM revocations) AS revocations,
                (SELECT count(*) FROM digest_secrets) AS digest_secrets,
                (SELECT count(*) FROM audit) AS audit,
                (SELECT count(*) FROM decision_stats) AS decision_stats",
    )
    .fetch_one(conn)
    .await
    .map_err(|e| StoreError::db("count records", e))?;
    let get = |table: &str| -> Result<u64, StoreError> {
        let n: i64 = row
            .try_get(table)
            .map_err(|e| StoreError::db("count records", e))?;
        u64::try_from(n).map_err(|_| StoreError::corrupt("row count of", table, "negative"))
    };
    Ok(RecordCounts {
        users: get("users")?,
        api_keys: get("api_keys")?,
        signing_keys: get("signing_keys")?,
        sessions: get("sessions")?,
        refresh_tokens: get("refresh_tokens")?,
        revocations: get("revocations")?,
        digest_secrets: get("digest_secrets")?,
        audit: get("audit")?,
        decision_stats: get("decision_stats")?,
    })
}

fn refresh_token_from_row(row: &DbRow) -> Result<RefreshToken, StoreError> {
    let session_id: String = row
        .try_get("session_id")
        .map_err(|e| StoreError::db("read refresh token", e))?;
    let read = |e: sqlx::Error| StoreError::corrupt("refresh token of session", &session_id, e);
    let hash = |bytes: Vec<u8>| -> Result<[u8; 32], StoreError> {
        bytes.try_into().map_err(|_| {
            StoreError::corrupt(
                "refresh token of session",
                &session_id,
                "hash is not 32 bytes",
            )
        })
    };
    let parent: Option<Vec<u8>> = row.try_get("parent_hash").map_err(read)?;
    Ok(RefreshToken {
        hash: hash(row.try_get("hash").map_err(read)?)?,
        parent_hash: parent.map(hash).transpose()?,
        generation: row.try_get("generation").map_err(read)?,
        created_at: row.try_get("created_at").map_err(read)?,
        expires_at: row.try_get("expires_at").map_err(read)?,
        used_at: row.try_get("used_at").map_err(read)?,
        session_id,
    })
}

fn digest_secret_from_row(row: &DbRow) -> Result<DigestSecret, StoreError> {
    let user: String = row
        .try_get("user_name")
        .map_err(|e| StoreError::db("read digest secret", e))?;
    let read = |e: sqlx::Error| StoreError::corrupt("digest secret of", &user, e);
    let algorithm: String = row.try_get("algorithm").map_err(read)?;
    let algorithm = DigestAlgorithm::parse(&algorithm)
        .ok_or_else(|| StoreError::corrupt("digest secret of", &user, "unknown algorithm"))?;
    Ok(DigestSecret {
        realm: row.try_get("realm").map_err(read)?,
        algorithm,
        secret: DigestHa1 {
            ha1: row.try_get("ha1").map_err(read)?,
            userhash: row.try_get("userhash").map_err(read)?,
        },
        user,
    })
}
