-- Gatehouse schema v5 (PostgreSQL): attributes of local users (issue 13: requirements,
-- row 25). Mirrors migrations/sqlite/0005_attributes.sql; never edit after a release.
-- TEXT, not JSONB: the queries are shared with SQLite and the store checks the JSON itself.

ALTER TABLE users ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
