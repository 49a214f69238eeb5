-- Gatehouse schema v4 (SQLite): per-minute decision rollups for the admin console's charts
-- (docs/operations.md). Applied once inside a transaction by the crate's migrator; never
-- edit after a release. Each node adds its counts to the rows of a minute, so the rows hold
-- the sum of every node. No user, address or credential: route names and codes only.

CREATE TABLE decision_stats (
    minute INTEGER NOT NULL,                    -- unix seconds at the start of the minute
    route  TEXT    NOT NULL,                    -- route name, `default`, `admin-api`, `auth/...`
    status INTEGER NOT NULL,                    -- the status sent
    reason TEXT    NOT NULL,                    -- the `error` code, or `allowed`, `public`, ...
    count  INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (minute, route, status, reason)
) STRICT;
