-- Gatehouse schema v6 (PostgreSQL): the authentication methods of a session (`amr`,
-- RFC 8176), carried into the access tokens minted from it (issue 16). Mirrors
-- migrations/sqlite/0006_session_amr.sql; never edit after a release.

ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
