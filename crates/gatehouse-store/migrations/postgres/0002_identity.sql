-- Gatehouse schema v2 (PostgreSQL): sessions with their refresh-token families, the
-- access-token revocation list, TOTP secrets and Digest (RFC 7616) HA1 secrets.
-- Mirrors migrations/sqlite/0002_identity.sql; never edit after a release.

-- TOTP (RFC 6238 §5.2): encrypted secret (opaque bytes) and the last accepted time-step.
ALTER TABLE users ADD COLUMN mfa_secret BYTEA;
ALTER TABLE users ADD COLUMN mfa_last_step BIGINT;
ALTER TABLE users ADD CONSTRAINT users_mfa_last_step_needs_secret
    CHECK (mfa_last_step IS NULL OR mfa_secret IS NOT NULL);

-- One login = one session = one refresh-token family.
CREATE TABLE sessions (
    id              TEXT    NOT NULL PRIMARY KEY,
    user_name       TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    acr             TEXT    NOT NULL,
    auth_time       BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,          -- = expiry of the current refresh token
    revoked_at      BIGINT,
    revoke_reason   TEXT,
    last_refresh_at BIGINT,
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);

CREATE INDEX sessions_user_name ON sessions (user_name);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE refresh_tokens (
    hash        BYTEA   NOT NULL PRIMARY KEY CHECK (length(hash) = 32),  -- SHA-256 of the token
    session_id  TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation  BIGINT  NOT NULL CHECK (generation >= 0),
    parent_hash BYTEA   CHECK (parent_hash IS NULL OR length(parent_hash) = 32),
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    UNIQUE (session_id, generation)
);

-- Revoked access tokens and sessions, polled by every node through `seq`. A sequence never
-- hands out a value twice; inserts take a transaction-level advisory lock so that `seq`
-- order is commit order (src/postgres/revocations.rs).
CREATE TABLE revocations (
    seq        BIGSERIAL NOT NULL PRIMARY KEY,
    kind       TEXT      NOT NULL CHECK (kind IN ('token', 'session')),
    id         TEXT      NOT NULL,
    expires_at BIGINT    NOT NULL,              -- when the revoked thing dies anyway
    reason     TEXT      NOT NULL,
    UNIQUE (kind, id)
);

CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- Digest (RFC 7616 §3.4.2) HA1 and userhash (§3.4.4) per user, realm and algorithm.
CREATE TABLE digest_secrets (
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    realm     TEXT NOT NULL,
    algorithm TEXT NOT NULL,                   -- 'MD5' | 'SHA-256' (RFC 7616 §3.3)
    ha1       TEXT NOT NULL,                   -- lowercase hex
    userhash  TEXT NOT NULL,                   -- lowercase hex
    PRIMARY KEY (user_name, realm, algorithm),
    UNIQUE (realm, algorithm, userhash)
);
