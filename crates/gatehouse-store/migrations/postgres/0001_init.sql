-- Gatehouse schema v1 (PostgreSQL): users, API keys, token signing keys.
-- Mirrors migrations/sqlite/0001_init.sql. Applied once inside a transaction (under
-- pg_advisory_xact_lock) by the crate's migrator (src/postgres/migrate.rs), which records it
-- in `_gatehouse_migrations` with its SHA-256. Never edit this file after a release.
-- Times are unix seconds (BIGINT). Lists (roles, scopes) are JSON arrays of strings as TEXT.

CREATE TABLE users (
    name             TEXT    NOT NULL PRIMARY KEY,
    password_hash    TEXT,                            -- PHC string; NULL = no password login
    roles            TEXT    NOT NULL DEFAULT '[]',   -- JSON array of strings
    tenant           TEXT,
    suspended_at     BIGINT,
    suspended_reason TEXT,
    created_at       BIGINT  NOT NULL,
    CHECK ((suspended_at IS NULL) = (suspended_reason IS NULL))
);

CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    prefix       TEXT    NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    hash         BYTEA   NOT NULL CHECK (length(hash) = 32),  -- SHA-256 of the full key
    user_name    TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    scopes       TEXT    NOT NULL DEFAULT '[]',         -- JSON array of strings
    read_only    BOOLEAN NOT NULL,
    label        TEXT,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT
);

CREATE INDEX api_keys_user_name ON api_keys (user_name);

CREATE TABLE signing_keys (
    kid           TEXT    NOT NULL PRIMARY KEY,
    algorithm     TEXT    NOT NULL,
    private_pkcs8 BYTEA   NOT NULL,
    public_key    BYTEA   NOT NULL,
    created_at    BIGINT  NOT NULL,
    retired_at    BIGINT
);
