//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "An identity-aware gateway that answers 401 and 403 exactly right"
)]
pub struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info`, `gatehouse=debug`.
    #[arg(long, global = true, env = "GATEHOUSE_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// The TOML config file. Without one, the built-in defaults apply
    /// (SQLite store `gatehouse.db` in the current directory).
    #[arg(long, short = 'c', env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (reverse proxy and forward-auth).
    Serve(ConfigArg),
    /// Run a self-contained demo: a demo upstream, the gateway, seeded users, and a tour.
    Demo {
        /// Public address of the demo gateway.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Address of the demo upstream.
        #[arg(long, default_value = "127.0.0.1:3000")]
        upstream: std::net::SocketAddr,
        /// Address of the admin port: the console, the admin API and `/metrics`.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin_listen: std::net::SocketAddr,
    },
    /// Validate a config file; warn about shadowed routes.
    Check(ConfigArg),
    /// Show how a request would be decided: the steps, the row of the contract, the answer.
    Explain {
        #[command(flatten)]
        config: ConfigArg,
        /// HTTP method, e.g. GET.
        method: String,
        /// A path (`/api/x?y=1`) or an absolute URL.
        url: String,
        /// A request header, `Name: value`; repeatable.
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// The client address to decide for.
        #[arg(long, default_value = "127.0.0.1")]
        client_ip: std::net::IpAddr,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Import users from an Apache htpasswd file (bcrypt, $apr1$, {SHA}, argon2).
    ImportHtpasswd {
        #[command(flatten)]
        config: ConfigArg,
        file: PathBuf,
        /// Role given to every imported user; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Replace the password of users that already exist (default: skip them).
        #[arg(long)]
        update: bool,
    },
    /// Import Digest secrets from an Apache htdigest file (`user:realm:HA1`, MD5). Missing
    /// users are created without a password; existing ones keep theirs and their roles.
    /// Nothing is imported if any line is bad. Clients answer the first Digest challenge
    /// they support (SHA-256 by default), so serve imported users with
    /// `[server] digest_algorithms = ["MD5"]`.
    ImportHtdigest {
        #[command(flatten)]
        config: ConfigArg,
        file: PathBuf,
        /// Role given to every user the import creates; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Issue an access token for a local user (signed with our own key).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Login sessions: list and revoke (logout from the server side).
    #[command(subcommand)]
    Session(SessionCommand),
    /// Our token-signing keys: rotate and list.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Audit any HTTP API for correct 401/403 behaviour and broken access control.
    Probe(crate::commands::probe::ProbeArgs),
    /// Apply the store's migrations (SQLite or PostgreSQL) and list what is applied. Gateways
    /// also migrate when they open the store; this runs it ahead of a deployment.
    Migrate(ConfigArg),
    /// Read the audit trail (refusals, allowed requests with `log_allowed`, alerts).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Serve stubs and contract presets for client tests, with a request journal at
    /// `/__gatehouse/requests`.
    Mock(crate::commands::mock::MockArgs),
    /// Copy every record of one store into another, empty one (users, API keys, signing keys
    /// and the master secret, sessions, revocations, Digest secrets, the audit trail), e.g.
    /// from a single node's SQLite file to the PostgreSQL of a cluster. Stop the gateways
    /// first. Exit 2 on bad input (a bad URL, the same store twice, a non-empty target).
    Copy {
        /// The store to copy, as `[store] url` names it; only read, never migrated.
        #[arg(long)]
        from: String,
        /// The store to fill, as `[store] url` names it; migrated first, refused unless empty.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest records, oldest first; `--follow` keeps printing new ones.
    Tail {
        #[command(flatten)]
        config: ConfigArg,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Poll for new records every second until interrupted.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Print JSON lines (the audit file's format).
        #[arg(long)]
        json: bool,
    },
    /// Records matching every filter given.
    Query {
        #[command(flatten)]
        config: ConfigArg,
        /// A duration back from now (`15m`, `2h`, `7d`) or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Status sent (404 for hidden refusals; 0 for alert events).
        #[arg(long)]
        status: Option<u16>,
        /// The `error` code (the true one for hidden 404s), e.g. `invalid_credentials`.
        #[arg(long)]
        reason: Option<String>,
        /// The principal (proven subject).
        #[arg(long)]
        user: Option<String>,
        /// At most this many (the newest).
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Revoke sessions: their refresh tokens stop working and their access tokens are
    /// answered 401 `token_revoked` at once, on every node.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        /// Every session of this user.
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        user: Option<String>,
        /// One session by id.
        #[arg(long)]
        id: Option<String>,
    },
    /// List sessions.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        user: Option<String>,
        /// Include revoked and expired sessions.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new Ed25519 signing key. New tokens are signed with it (running nodes pick it
    /// up within seconds); the previous keys stay published and verifiable until every token
    /// they signed has expired (`[tokens] access_ttl` plus leeway), then retire.
    Rotate {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List signing keys (never the private half).
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Enroll a user in TOTP (RFC 6238): prints the `otpauth://` URI, the base32 secret and a
    /// QR code to scan. Re-enrolling replaces the old secret.
    Enroll {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        /// Issuer shown in the authenticator app.
        #[arg(long, default_value = "Gatehouse")]
        issuer: String,
    },
    /// Remove a user's TOTP secret.
    Disable {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DigestCommand {
    /// Store the user's Digest secrets (HA1 and userhash for MD5 and SHA-256) for the
    /// configured `[server] realm`. The password is read from standard input; if the user
    /// has a password, it must be that one (Basic and Digest then accept the same).
    Enable {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove the user's Digest secrets for the configured `[server] realm`.
    Disable {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        /// Role; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long)]
        tenant: Option<String>,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
        /// Also enable HTTP Digest (RFC 7616): store the HA1 and userhash for MD5 and
        /// SHA-256 in the configured `[server] realm`.
        #[arg(long)]
        digest: bool,
    },
    /// HTTP Digest secrets (RFC 7616): a user can use Digest only once enabled.
    #[command(subcommand)]
    Digest(DigestCommand),
    /// Suspend a user: their credentials keep proving who they are, and every request is
    /// answered 403 `account_suspended`.
    Suspend {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a suspension.
    Unsuspend {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
    /// Set attributes, read by route requirements and `when` expressions: `true`/`false`
    /// are booleans, numbers are numbers, `[\"a\",\"b\"]` a list of strings, `\"…\"` a string
    /// as written, anything else a string. Seen by every node within a second.
    Set {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        /// `KEY=VALUE`, e.g. `email_verified=true plan=pro`.
        #[arg(required = true, value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
    /// Remove attributes.
    Unset {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// List users.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Multi-factor authentication (TOTP).
    #[command(subcommand)]
    Mfa(MfaCommand),
    /// Delete a user and their API keys.
    Delete {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; the key is printed once, alone on the last line.
    Create {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        user: String,
        /// Scope; repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        read_only: bool,
        /// Lifetime, e.g. `90d`.
        #[arg(long)]
        expires: Option<String>,
        /// A label to recognise the key by.
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a key by id, prefix, or the full key as printed (`-` reads it from standard
    /// input, keeping a leaked key out of the shell history).
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        key: String,
    },
    /// List keys (never the secret).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue an access token for a local user; printed alone on the last line.
    Issue {
        #[command(flatten)]
        config: ConfigArg,
        user: String,
        /// Scope; repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime (default: `[tokens] access_ttl`).
        #[arg(long)]
        ttl: Option<String>,
        /// Authentication context class to record, e.g. `mfa`.
        #[arg(long, default_value = "pwd")]
        acr: String,
    },
}
