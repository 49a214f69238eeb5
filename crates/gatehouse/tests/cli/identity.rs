//! Tokens and sessions against a running `gatehouse serve` (design §2 "Tokens and
//! sessions"): login → refresh → logout and row 10, `session list` / `session revoke` and
//! `user suspend` seen by the server, TOTP MFA with a step-up route (row 14),
//! `keys list` / `keys rotate`.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::totp::{self, Totp};
use serde_json::{Value, json};

use crate::support::{Env, Response, Running, Upstream, free_addr, http, json_lines, poll, send};

/// A gateway in front of a stub upstream: Bearer by default, and `/api/billing/**` needs MFA.
pub struct Gateway {
    pub env: Env,
    pub addr: SocketAddr,
    _server: Running,
    _upstream: Upstream,
}

impl Gateway {
    /// Starts `gatehouse serve` with user `alice` (password `alice-password`).
    pub fn start(name: &str) -> Self {
        let upstream = Upstream::start();
        let addr = free_addr();
        let config = format!(
            r#"[server]
listen = "{addr}"
realm = "api"

[upstream]
url = "http://{upstream}"

[defaults]
access = "authenticated"
auth = ["bearer"]

[[route]]
name = "billing"
path = "/api/billing/**"
auth = ["bearer"]
mfa = true
"#,
            upstream = upstream.addr
        );
        let env = Env::new(name, &config);
        env.add_user("alice", "alice-password", &["editor"], Some("acme"));
        let path = env.config.to_str().expect("utf-8 temp path").to_owned();
        let server = Running::spawn(&env.dir.path, &["serve", "--config", &path]);
        poll(Duration::from_secs(20), "/healthz to answer 200", || {
            http(addr, "GET", "/healthz", &[])
                .ok()
                .filter(|r| r.status == 200)
        });
        Self {
            env,
            addr,
            _server: server,
            _upstream: upstream,
        }
    }

    /// `GET path` with `Authorization: Bearer token`.
    pub fn get(&self, path: &str, token: &str) -> Response {
        let auth = format!("Bearer {token}");
        http(self.addr, "GET", path, &[("Authorization", &auth)])
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Response {
        send(self.addr, path, &[], Some(body))
    }

    /// `POST /auth/login` as alice, expecting tokens.
    pub fn login(&self) -> Tokens {
        let r = self.post(
            "/auth/login",
            &json!({"username": "alice", "password": "alice-password"}),
        );
        Tokens::from_response(&r)
    }
}

/// The body as JSON.
#[track_caller]
pub fn body(r: &Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {r:#?}"))
}

/// Decodes one part (0 = header, 1 = claims) of a compact JWS without verifying it.
#[track_caller]
pub fn jwt_part(token: &str, part: usize) -> Value {
    let seg = token.split('.').nth(part).expect("a compact JWS");
    let bytes = URL_SAFE_NO_PAD.decode(seg).expect("base64url");
    serde_json::from_slice(&bytes).expect("a JSON object")
}

/// An OAuth-shaped token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    #[track_caller]
    pub fn from_response(r: &Response) -> Self {
        assert_eq!(r.status, 200, "{r:#?}");
        // RFC 6749 §5.1: responses carrying tokens must not be cached.
        assert_eq!(r.header("cache-control"), Some("no-store"), "{r:#?}");
        let b = body(r);
        assert_eq!(b["token_type"], "Bearer", "{b}");
        assert!(b["expires_in"].as_u64().is_some_and(|s| s > 0), "{b}");
        let refresh = b["refresh_token"].as_str().expect("refresh_token");
        Self {
            access: b["access_token"].as_str().expect("access_token").to_owned(),
            refresh: refresh.to_owned(),
        }
    }

    /// The `sid` claim: the login session.
    pub fn sid(&self) -> String {
        jwt_part(&self.access, 1)["sid"]
            .as_str()
            .expect("sid")
            .to_owned()
    }
}

/// Row 10: 401 `token_revoked` with the RFC 6750 §3.1 `invalid_token` challenge.
#[track_caller]
pub fn assert_revoked(r: &Response) {
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(r.error().as_deref(), Some("token_revoked"), "{r:#?}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(r#"error="invalid_token""#)
            && challenge.contains(r#"error_description="The access token has been revoked""#),
        "{r:#?}"
    );
}

/// Row 8 for a refresh token: 401 `invalid_token`.
#[track_caller]
fn assert_refresh_refused(gw: &Gateway, refresh: &str) {
    let r = gw.post("/auth/refresh", &json!({"refresh_token": refresh}));
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(r.error().as_deref(), Some("invalid_token"), "{r:#?}");
}

/// Polls `GET path` with `token` until it is refused with `token_revoked` (revocations
/// made by another process reach the server within its 1 s sync).
#[track_caller]
fn until_revoked(gw: &Gateway, path: &str, token: &str) -> Response {
    poll(Duration::from_secs(3), "the token to be revoked", || {
        let r = gw.get(path, token);
        (r.error().as_deref() == Some("token_revoked")).then_some(r)
    })
}

#[test]
fn login_refresh_logout_then_token_revoked() {
    let gw = Gateway::start("id-logout");

    let r = gw.post(
        "/auth/login",
        &json!({"username": "alice", "password": "wrong"}),
    );
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(r.error().as_deref(), Some("invalid_credentials"));
    let r = gw.post("/auth/login", &json!({"username": "alice"}));
    assert_eq!(r.status, 400, "{r:#?}");
    assert_eq!(r.error().as_deref(), Some("invalid_request"));

    let first = gw.login();
    let claims = jwt_part(&first.access, 1);
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["acr"], "pwd", "{claims}");
    let r = gw.get("/api/posts", &first.access);
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(r.body, "upstream saw alice");

    // Refresh: a new access token of the same session and a rotated refresh token.
    let r = gw.post("/auth/refresh", &json!({"refresh_token": first.refresh}));
    let second = Tokens::from_response(&r);
    assert_ne!(
        second.refresh, first.refresh,
        "the refresh token was not rotated"
    );
    assert_ne!(second.access, first.access);
    assert_eq!(second.sid(), first.sid(), "a refresh stays in its session");
    assert_eq!(gw.get("/api/posts", &second.access).status, 200);

    // Logout revokes the session: both access tokens of it, and its refresh family.
    let auth = format!("Bearer {}", second.access);
    let r = send(gw.addr, "/auth/logout", &[("Authorization", &auth)], None);
    assert_eq!(r.status, 204, "{r:#?}");
    assert_revoked(&gw.get("/api/posts", &second.access));
    assert_revoked(&gw.get("/api/posts", &first.access));
    assert_refresh_refused(&gw, &second.refresh);
    // Logging out twice: the token is already revoked.
    assert_revoked(&send(
        gw.addr,
        "/auth/logout",
        &[("Authorization", &auth)],
        None,
    ));

    // Theft detection: replaying a used refresh token revokes the whole family.
    let third = gw.login();
    let r = gw.post("/auth/refresh", &json!({"refresh_token": third.refresh}));
    let fourth = Tokens::from_response(&r);
    assert_eq!(gw.get("/api/posts", &fourth.access).status, 200);
    assert_refresh_refused(&gw, &third.refresh);
    assert_refresh_refused(&gw, &fourth.refresh);
    until_revoked(&gw, "/api/posts", &fourth.access);
}

#[test]
fn session_list_and_revoke_reach_the_running_server() {
    let gw = Gateway::start("id-sessions");
    let tokens = gw.login();
    let sid = tokens.sid();

    let table = gw.env.run(&["session", "list"]).ok().stdout;
    let row = table
        .lines()
        .find(|l| l.starts_with(&sid))
        .unwrap_or_else(|| panic!("no row for {sid}: {table}"));
    assert!(
        row.contains("alice") && row.contains("pwd") && row.contains("active until"),
        "{row}"
    );
    let sessions = json_lines(&gw.env.run(&["session", "list", "--json"]).ok().stdout);
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    assert_eq!(sessions[0]["id"], sid.as_str());
    assert_eq!(sessions[0]["user"], "alice");
    assert!(sessions[0]["revoked_at"].is_null(), "{sessions:#?}");

    // Revoked by another process while the server runs: refused within its sync interval.
    assert_eq!(gw.get("/api/posts", &tokens.access).status, 200);
    let out = gw.env.run(&["session", "revoke", "--user", "alice"]).ok();
    assert!(
        out.stdout.contains("revoked 1 session(s) of `alice`"),
        "{out:#?}"
    );
    assert_revoked(&until_revoked(&gw, "/api/posts", &tokens.access));
    assert_refresh_refused(&gw, &tokens.refresh);
    let table = gw.env.run(&["session", "list"]).ok().stdout;
    assert!(
        !table.contains(&sid),
        "a revoked session is listed: {table}"
    );
    let all = gw.env.run(&["session", "list", "--all"]).ok().stdout;
    assert!(
        all.contains(&sid) && all.contains("revoked by an administrator"),
        "{all}"
    );

    // One session by id; the user's other sessions live on.
    let (a, b) = (gw.login(), gw.login());
    gw.env.run(&["session", "revoke", "--id", &a.sid()]).ok();
    until_revoked(&gw, "/api/posts", &a.access);
    assert_eq!(gw.get("/api/posts", &b.access).status, 200);

    gw.env
        .run(&["session", "revoke", "--id", "s_nope"])
        .fails_with("no active session `s_nope`");
    gw.env
        .run(&["session", "revoke", "--user", "nobody"])
        .fails_with("no user `nobody`");
}

#[test]
fn user_suspend_revokes_sessions() {
    let gw = Gateway::start("id-suspend");
    let tokens = gw.login();
    assert_eq!(gw.get("/api/posts", &tokens.access).status, 200);

    let out = gw
        .env
        .run(&["user", "suspend", "alice", "--reason", "chargeback"])
        .ok();
    assert!(out.stdout.contains("(1 session(s) revoked)"), "{out:#?}");
    // The refresh family is revoked in the store: no new access tokens.
    assert_refresh_refused(&gw, &tokens.refresh);

    // The access token ends refused with 401 `token_revoked`. That is the contract's order
    // of evaluation: verification (rows 8–12, row 10 among them) comes before account state
    // (row 13), and `user suspend` revokes the sessions, so the token itself is dead. A 401
    // is also the useful answer: the client signs in again and then learns the lasting
    // truth, 403 `account_suspended` (below). Until the server's 1 s revocation sync has
    // run it may answer 403 `account_suspended` (its suspended-user set syncs on its own
    // 1 s timer) or still 200; never anything else.
    let r = poll(Duration::from_secs(3), "the token to be revoked", || {
        let r = gw.get("/api/posts", &tokens.access);
        let seen = (r.status, r.error());
        assert!(
            matches!(
                (seen.0, seen.1.as_deref()),
                (200, None) | (403, Some("account_suspended")) | (401, Some("token_revoked"))
            ),
            "{r:#?}"
        );
        (r.status == 401).then_some(r)
    });
    assert_revoked(&r);
    // Stable: the answer does not flip back once both syncs have run.
    std::thread::sleep(Duration::from_millis(1200));
    assert_revoked(&gw.get("/api/posts", &tokens.access));

    // Signing in again proves the identity; the account is what is refused (row 13).
    let r = gw.post(
        "/auth/login",
        &json!({"username": "alice", "password": "alice-password"}),
    );
    assert_eq!(r.status, 403, "{r:#?}");
    assert_eq!(r.error().as_deref(), Some("account_suspended"));
    assert_eq!(body(&r)["reason"], "chargeback");
    assert!(r.header("www-authenticate").is_none(), "{r:#?}");
}

/// The TOTP code of now for a base32 secret (RFC 6238: SHA-1, 30 s steps, 6 digits).
pub fn totp_now(secret_b32: &str) -> (String, i64) {
    let secret = totp::base32_decode(secret_b32).expect("a base32 secret");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let step = totp::step_at(i64::try_from(now).expect("i64 seconds")).expect("a time step");
    (format!("{:06}", Totp::new(&secret).code_at(step)), step)
}

/// A 401 `mfa_required` login: returns its `mfa_token`.
#[track_caller]
fn login_needs_mfa(gw: &Gateway) -> String {
    let r = gw.post(
        "/auth/login",
        &json!({"username": "alice", "password": "alice-password"}),
    );
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(r.error().as_deref(), Some("mfa_required"), "{r:#?}");
    body(&r)["mfa_token"]
        .as_str()
        .expect("mfa_token")
        .to_owned()
}

#[test]
fn mfa_enroll_login_step_up_and_disable() {
    let gw = Gateway::start("id-mfa");

    // A password-only token passes ordinary routes but not `mfa = true` ones (row 14).
    let pwd = gw.login();
    assert_eq!(gw.get("/api/posts", &pwd.access).status, 200);
    let r = gw.get("/api/billing/invoices", &pwd.access);
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(
        r.error().as_deref(),
        Some("insufficient_user_authentication")
    );
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains(r#"error="insufficient_user_authentication""#)
            && challenge.contains(r#"acr_values="mfa""#),
        "{r:#?}"
    );

    let out = gw.env.run(&["user", "mfa", "enroll", "alice"]).ok();
    let uri = out
        .stdout
        .lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .unwrap_or_else(|| panic!("no otpauth URI: {out:#?}"));
    let secret = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap_or_else(|| panic!("no secret line: {out:#?}"))
        .to_owned();
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
        "not RFC 4648 base32: {secret}"
    );
    assert_eq!(totp::base32_decode(&secret).map(|s| s.len()), Some(20));
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("alice"), "{uri}");

    // Password right, second factor pending.
    let mfa_token = login_needs_mfa(&gw);
    let (code, step) = totp_now(&secret);
    // A wrong code: one that matches none of the steps the server accepts (±1).
    let key = Totp::new(&totp::base32_decode(&secret).unwrap_or_default());
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| (step - 1..=step + 2).all(|s| *c != format!("{:06}", key.code_at(s))))
        .unwrap_or_default();
    let r = gw.post("/auth/mfa", &json!({"mfa_token": mfa_token, "code": wrong}));
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(r.error().as_deref(), Some("invalid_credentials"));
    let r = gw.post("/auth/mfa", &json!({"mfa_token": mfa_token, "code": code}));
    let mfa = Tokens::from_response(&r);
    assert_eq!(jwt_part(&mfa.access, 1)["acr"], "mfa");
    let r = gw.get("/api/billing/invoices", &mfa.access);
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(r.body, "upstream saw alice");
    // A refresh keeps the session's `acr`.
    let r = gw.post("/auth/refresh", &json!({"refresh_token": mfa.refresh}));
    let refreshed = Tokens::from_response(&r);
    assert_eq!(
        gw.get("/api/billing/invoices", &refreshed.access).status,
        200
    );

    // The same code is never accepted twice (RFC 6238 §5.2), even with a new mfa_token.
    let again = login_needs_mfa(&gw);
    let r = gw.post("/auth/mfa", &json!({"mfa_token": again, "code": code}));
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(r.error().as_deref(), Some("invalid_credentials"));

    let out = gw.env.run(&["user", "mfa", "disable", "alice"]).ok();
    assert!(out.stdout.contains("MFA disabled for `alice`"), "{out:#?}");
    let plain = gw.login();
    assert_eq!(jwt_part(&plain.access, 1)["acr"], "pwd");

    gw.env
        .run(&["user", "mfa", "enroll", "nobody"])
        .fails_with("no user `nobody`");
    gw.env
        .run(&["user", "mfa", "disable", "nobody"])
        .fails_with("no user `nobody`");
}

#[test]
fn keys_list_and_rotate() {
    let gw = Gateway::start("id-keys");
    let before = gw.login();
    let old_kid = jwt_part(&before.access, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_owned();

    let table = gw.env.run(&["keys", "list"]).ok().stdout;
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(table.starts_with("KID"), "{table}");
    assert_eq!(rows.len(), 1, "{table}");
    assert!(
        rows[0].starts_with(&old_kid) && rows[0].contains("EdDSA") && rows[0].ends_with("active"),
        "{table}"
    );

    let out = gw.env.run(&["keys", "rotate"]).ok();
    let new_kid = out
        .stdout
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no kid printed: {out:#?}"))
        .to_owned();
    assert!(out.stdout.starts_with("new signing key `"), "{out:#?}");
    assert!(out.stdout.contains("1 older key(s)"), "{out:#?}");
    assert_ne!(new_kid, old_kid);

    let table = gw.env.run(&["keys", "list"]).ok().stdout;
    let row = |kid: &str| {
        table
            .lines()
            .find(|l| l.starts_with(kid))
            .unwrap_or_else(|| panic!("no row for {kid}: {table}"))
            .to_owned()
    };
    assert!(row(&old_kid).contains("verifies until"), "{table}");
    assert!(row(&new_kid).ends_with("active"), "{table}");

    // The server picks the new key up: it signs new tokens, the old key still verifies.
    poll(Duration::from_secs(10), "the new key to sign", || {
        let t = gw.login();
        (jwt_part(&t.access, 0)["kid"] == new_kid.as_str()).then_some(())
    });
    assert_eq!(gw.get("/api/posts", &before.access).status, 200);
}
