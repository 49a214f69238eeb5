-- Gatehouse schema v3 (SQLite): the audit trail (design §6, docs/operations.md).
-- Applied once inside a transaction by the crate's migrator; never edit after a release.
-- One row per refusal (and per allowed request with `[audit] log_allowed`), plus alert
-- events. Never a secret: no credentials, no query strings, no tokens.

CREATE TABLE audit (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,            -- unix seconds
    kind       TEXT    NOT NULL CHECK (kind IN ('request', 'alert')),
    request_id TEXT    NOT NULL,
    route      TEXT    NOT NULL,            -- route name, `default`, or `auth/...`
    method     TEXT    NOT NULL,
    path       TEXT    NOT NULL,            -- normalized, without the query
    client_ip  TEXT,
    principal  TEXT,                        -- proven subject, if known
    scheme     TEXT,                        -- scheme of the presented credential
    status     INTEGER NOT NULL,            -- the status sent; 0 for alert events
    error      TEXT,                        -- the true `error` code (hidden 404s too)
    hidden     INTEGER NOT NULL CHECK (hidden IN (0, 1)),
    detail     TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_principal ON audit (principal, seq);
