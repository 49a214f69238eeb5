-- Gatehouse schema v4 (PostgreSQL): per-minute decision rollups for the admin console's
-- charts. Mirrors migrations/sqlite/0004_stats.sql; never edit after a release.

CREATE TABLE decision_stats (
    minute BIGINT  NOT NULL,                    -- unix seconds at the start of the minute
    route  TEXT    NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT    NOT NULL,
    count  BIGINT  NOT NULL CHECK (count >= 0),
    PRIMARY KEY (minute, route, status, reason)
);
