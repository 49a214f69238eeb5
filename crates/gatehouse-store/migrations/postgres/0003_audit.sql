-- Gatehouse schema v3 (PostgreSQL): the audit trail (design §6, docs/operations.md).
-- Mirrors migrations/sqlite/0003_audit.sql; never edit after a release.
-- Never a secret: no credentials, no query strings, no tokens.

CREATE TABLE audit (
    seq        BIGSERIAL NOT NULL PRIMARY KEY,
    time       BIGINT    NOT NULL,            -- unix seconds
    kind       TEXT      NOT NULL CHECK (kind IN ('request', 'alert')),
    request_id TEXT      NOT NULL,
    route      TEXT      NOT NULL,
    method     TEXT      NOT NULL,
    path       TEXT      NOT NULL,            -- normalized, without the query
    client_ip  TEXT,
    principal  TEXT,
    scheme     TEXT,
    status     INTEGER   NOT NULL,            -- the status sent; 0 for alert events
    error      TEXT,
    hidden     BOOLEAN   NOT NULL,
    detail     TEXT      NOT NULL
);

CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_principal ON audit (principal, seq);
