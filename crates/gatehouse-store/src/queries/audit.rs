//! `audit` table: the audit trail (design §6). Shared by both backends (see
//! `src/queries.rs`); `status` and `hidden` are read and written as `i32` and `bool`, which
//! SQLite stores as integers.

use sqlx::{Pool, Row};

use super::dialect::{Db, begin_write, json_rows};
use crate::error::StoreError;
use crate::model::{AuditEntry, AuditKind, AuditQuery, AuditRecord};

type DbRow = <Db as sqlx::Database>::Row;

/// Every audit column, unqualified, in the order `copy.rs` binds them (`append` binds them
/// after `seq`).
macro_rules! audit_columns {
    () => {
        "seq, time, kind, request_id, route, method, path, client_ip, principal, scheme, \
         status, error, hidden, detail"
    };
}
pub(super) use audit_columns;

/// One `INSERT` per batch with one parameter: the batch as a JSON array of rows, each an
/// array of the 13 values in column order, unpacked by the database (`dialect::JSON_ROWS`).
/// Binding 13 values per record cost more than inserting it: sqlx wraps every string in an
/// `Arc` and SQLite copies it again (`SQLITE_TRANSIENT`), ≈ 40 allocations and frees per
/// record; one text parameter is one copy of the whole batch.
const INSERT_JSON: &str = concat!(
    "INSERT INTO audit (time, kind, request_id, route, method, path, client_ip, \
     principal, scheme, status, error, hidden, detail) \
     SELECT CAST(value ->> 0 AS BIGINT), value ->> 1, value ->> 2, value ->> 3, \
     value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8, \
     CAST(value ->> 9 AS INTEGER), value ->> 10, CAST(value ->> 11 AS BOOLEAN), \
     value ->> 12 FROM ",
    json_rows!()
);

pub(super) async fn append(pool: &Pool<Db>, records: Vec<AuditRecord>) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let err = |e: sqlx::Error| StoreError::db("append audit", e);
    // Each record as the JSON array `INSERT_JSON` unpacks.
    let rows: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.time,
                r.kind.as_str(),
                &r.request_id,
                &r.route,
                &r.method,
                &r.path,
                &r.client_ip,
                &r.principal,
                &r.scheme,
                r.status,
                &r.error,
                r.hidden,
                &r.detail,
            )
        })
        .collect();
    let json = serde_json::to_string(&rows)
        .map_err(|e| StoreError::db("append audit", sqlx::Error::Encode(e.into())))?;
    let mut tx = begin_write(pool).await.map_err(err)?;
    sqlx::query(INSERT_JSON)
        .bind(json)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)
}

pub(super) fn from_row(row: &DbRow) -> Result<AuditEntry, StoreError> {
    let seq: i64 = row
        .try_get("seq")
        .map_err(|e| StoreError::db("read audit", e))?;
    let key = seq.to_string();
    let read = |e: sqlx::Error| StoreError::corrupt("audit record", &key, e);
    let kind: String = row.try_get("kind").map_err(read)?;
    let kind = AuditKind::parse(&kind)
        .ok_or_else(|| StoreError::corrupt("audit record", &key, "unknown kind"))?;
    let status: i32 = row.try_get("status").map_err(read)?;
    let status = u16::try_from(status)
        .map_err(|_| StoreError::corrupt("audit record", &key, "status out of range"))?;
    Ok(AuditEntry {
        seq,
        record: AuditRecord {
            time: row.try_get("time").map_err(read)?,
            kind,
            request_id: row.try_get("request_id").map_err(read)?,
            route: row.try_get("route").map_err(read)?,
            method: row.try_get("method").map_err(read)?,
            path: row.try_get("path").map_err(read)?,
            client_ip: row.try_get("client_ip").map_err(read)?,
            principal: row.try_get("principal").map_err(read)?,
            scheme: row.try_get("scheme").map_err(read)?,
            status,
            error: row.try_get("error").map_err(read)?,
            hidden: row.try_get("hidden").map_err(read)?,
            detail: row.try_get("detail").map_err(read)?,
        },
    })
}

/// Up to `limit` entries with `seq > after_seq`, oldest first: one page of a walk through
/// the whole trail by `seq` (the primary key, so each page is one index range).
pub(super) async fn page(
    pool: &Pool<Db>,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after_seq)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(|e| StoreError::db("read audit", e))?
    .iter()
    .map(from_row)
    .collect()
}

pub(super) async fn query(pool: &Pool<Db>, q: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    // Static SQL: an absent filter binds NULL and matches everything. The two orders are two
    // constant statements (an `ORDER BY` cannot take a parameter).
    macro_rules! filtered {
        ($order:literal) => {
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit \
                 WHERE ($1 IS NULL OR time >= $1) AND ($2 IS NULL OR seq > $2) \
                   AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR error = $4) \
                   AND ($5 IS NULL OR principal = $5) AND ($6 IS NULL OR time < $6) \
                   AND ($7 IS NULL OR seq < $7) AND ($8 IS NULL OR route = $8) \
                   AND ($9 IS NULL OR client_ip = $9) AND ($10 IS NULL OR request_id = $10) \
                   AND ($11 IS NULL OR kind = $11) \
                 ORDER BY seq ",
                $order,
                " LIMIT $12"
            )
        };
    }
    let sql = if q.oldest_first {
        filtered!("ASC")
    } else {
        filtered!("DESC")
    };
    let rows = sqlx::query(sql)
        .bind(q.since)
        .bind(q.after_seq)
        .bind(q.status.map(i32::from))
        .bind(q.reason)
        .bind(q.user)
        .bind(q.until)
        .bind(q.before_seq)
        .bind(q.route)
        .bind(q.client_ip)
        .bind(q.request_id)
        .bind(q.kind.map(AuditKind::as_str))
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await
        .map_err(|e| StoreError::db("read audit", e))?;
    let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    if !q.oldest_first {
        out.reverse();
    }
    Ok(out)
}
