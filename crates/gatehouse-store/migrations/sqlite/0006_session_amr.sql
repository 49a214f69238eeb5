-- Gatehouse schema v6 (SQLite): the authentication methods of a session (`amr`, RFC 8176),
-- carried into the access tokens minted from it (issue 16: a provider's `amr` survives the
-- sign-in). Applied once inside a transaction by the crate's migrator; never edit after a
-- release. A JSON array of strings, like `users.roles`; sessions from before it have none.

ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
