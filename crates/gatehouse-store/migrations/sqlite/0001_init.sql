-- Gatehouse schema v1 (SQLite): users, API keys, token signing keys.
-- Applied once inside a transaction by the crate's migrator (src/sqlite/migrate.rs), which
-- records it in `_gatehouse_migrations`. Never edit this file after a release: the migrator
-- stores its SHA-256 and refuses to open a database whose applied migrations changed.
-- Times are unix seconds. Lists (roles, scopes) are JSON arrays of strings stored as TEXT.

CREATE TABLE users (
    name             TEXT    NOT NULL PRIMARY KEY,
    password_hash    TEXT,                            -- PHC string; NULL = no password login
    roles            TEXT    NOT NULL DEFAULT '[]',   -- JSON array of strings
    tenant           TEXT,
    suspended_at     INTEGER,
    suspended_reason TEXT,
    created_at       INTEGER NOT NULL,
    CHECK ((suspended_at IS NULL) = (suspended_reason IS NULL))
) STRICT;

CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    prefix       TEXT    NOT NULL UNIQUE,              -- public lookup part of the key
    hash         BLOB    NOT NULL CHECK (length(hash) = 32),  -- SHA-256 of the full key
    user_name    TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    scopes       TEXT    NOT NULL DEFAULT '[]',         -- JSON array of strings
    read_only    INTEGER NOT NULL CHECK (read_only IN (0, 1)),
    label        TEXT,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;

CREATE INDEX api_keys_user_name ON api_keys (user_name);

CREATE TABLE signing_keys (
    kid           TEXT    NOT NULL PRIMARY KEY,
    algorithm     TEXT    NOT NULL,
    private_pkcs8 BLOB    NOT NULL,
    public_key    BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER
) STRICT;
