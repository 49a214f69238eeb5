-- Gatehouse schema v2 (SQLite): sessions with their refresh-token families, the access-token
-- revocation list, TOTP secrets and Digest (RFC 7616) HA1 secrets.
-- Applied once inside a transaction by the crate's migrator; never edit after a release.
-- Times are unix seconds. Hashes are SHA-256 computed by the caller: the store never sees a
-- raw refresh token.

-- TOTP (RFC 6238): the secret arrives already encrypted by the caller (opaque bytes).
-- `mfa_last_step` is the last accepted time-step (§5.2: a used step is never accepted again);
-- it only exists while a secret does.
ALTER TABLE users ADD COLUMN mfa_secret BLOB;
ALTER TABLE users ADD COLUMN mfa_last_step INTEGER
    CHECK (mfa_last_step IS NULL OR mfa_secret IS NOT NULL);

-- One login = one session = one refresh-token family.
CREATE TABLE sessions (
    id              TEXT    NOT NULL PRIMARY KEY,
    user_name       TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    acr             TEXT    NOT NULL,
    auth_time       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,          -- = expiry of the current refresh token
    revoked_at      INTEGER,
    revoke_reason   TEXT,
    last_refresh_at INTEGER,
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
) STRICT;

CREATE INDEX sessions_user_name ON sessions (user_name);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Every refresh token a session was ever given. Exactly one per session has `used_at` NULL:
-- the current one (the newest generation).
CREATE TABLE refresh_tokens (
    hash        BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),  -- SHA-256 of the token
    session_id  TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation  INTEGER NOT NULL CHECK (generation >= 0),
    parent_hash BLOB    CHECK (parent_hash IS NULL OR length(parent_hash) = 32),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    UNIQUE (session_id, generation)
) STRICT;

-- Revoked access tokens (`kind` 'token', `id` = jti) and sessions (`kind` 'session', `id` =
-- session id), polled by every node through `seq`. AUTOINCREMENT: a `seq` is never reused,
-- even after the newest row was purged, so a poller's cursor can never skip a row.
CREATE TABLE revocations (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL CHECK (kind IN ('token', 'session')),
    id         TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,              -- when the revoked thing dies anyway
    reason     TEXT    NOT NULL,
    UNIQUE (kind, id)
) STRICT;

CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- Digest (RFC 7616 §3.4.2) HA1 = H(user:realm:password) per user, realm and algorithm, and
-- the userhash H(user:realm) (§3.4.4) to find the user when the client hides the name.
CREATE TABLE digest_secrets (
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    realm     TEXT NOT NULL,
    algorithm TEXT NOT NULL,                   -- 'MD5' | 'SHA-256' (RFC 7616 §3.3)
    ha1       TEXT NOT NULL,                   -- lowercase hex
    userhash  TEXT NOT NULL,                   -- lowercase hex
    PRIMARY KEY (user_name, realm, algorithm),
    UNIQUE (realm, algorithm, userhash)
) STRICT;
