-- Gatehouse schema v5 (SQLite): attributes of local users (issue 13: requirements, row 25).
-- Applied once inside a transaction by the crate's migrator; never edit after a release.
-- A JSON object of name → string, boolean, number or array of strings, checked by the
-- store on every write (`gatehouse user set NAME KEY=VALUE…`).

ALTER TABLE users ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
