//! The admin API on the admin port, end to end over real sockets: who may use it (the
//! contract's own 401/403, CSRF on the session cookie), every endpoint, and the audit record
//! of each change naming its actor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use common::{Harness, Resp, basic};
use gatehouse_store::{AuditQuery, AuditRecord};
use serde_json::{Value, json};

/// The gateway of the semantics tests plus its admin port.
struct Admin {
    h: Harness,
    addr: SocketAddr,
}

impl Admin {
    async fn start(extra: &str) -> Self {
        let h = Harness::start_with(extra).await;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let router = gatehouse_server::admin_router(std::sync::Arc::clone(&h.gw));
        // Stops with the test's runtime.
        tokio::spawn(gatehouse_server::serve_on(
            l,
            router,
            std::future::pending(),
        ));
        Self { h, addr }
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut all = headers.to_vec();
        if !body.is_empty()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            all.push(("content-type", "application/json"));
        }
        self.h
            .send_at(self.addr, method, path, &all, Body::from(body.to_owned()))
            .await
    }

    /// As the administrator alice, by Bearer token.
    async fn admin(&self, method: &str, path: &str, body: &str) -> Resp {
        let token = self.h.own_token("alice", &[], "pwd", now(), 600).await;
        let auth = format!("Bearer {token}");
        self.send(method, path, &[("authorization", &auth)], body)
            .await
    }

    /// Waits (bounded) for an audit record matching `pred`.
    async fn audit_where(&self, what: &str, pred: impl Fn(&AuditRecord) -> bool) -> AuditRecord {
        for _ in 0..100 {
            let got = self
                .h
                .gw
                .store
                .query_audit(AuditQuery {
                    limit: 10_000,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            if let Some(e) = got.into_iter().find(|e| pred(&e.record)) {
                return e.record;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no audit record: {what}");
    }
}

fn now() -> i64 {
    gatehouse_server::clock::now()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_administrators_pass_with_the_contracts_own_answers() {
    let a = Admin::start("").await;
    // Anonymous: 401 with one challenge per accepted scheme (no `error` attribute, RFC 6750
    // §3.1), the table's body.
    let r = a.send("GET", "/admin/api/users", &[], "").await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.error(), "missing_credentials");
    let challenges = r.challenges();
    assert!(
        challenges.iter().any(|c| c == "Bearer realm=\"api\""),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("ApiKey ")),
        "{challenges:?}"
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{r:?}",
        r = r.headers
    );
    assert!(r.header("x-request-id").is_some());
    // Unknown admin paths answer the same: nothing is learnt without credentials.
    let r = a.send("GET", "/admin/api/nothing-here", &[], "").await;
    assert_eq!(r.status, 401);
    // A garbage token: row 8.
    let r = a
        .send(
            "GET",
            "/admin/api/users",
            &[("authorization", "Bearer not.a.jwt")],
            "",
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.error().as_str()),
        (401, "invalid_token")
    );
    // Basic is not one of the admin API's schemes (row 6).
    let r = a
        .send(
            "GET",
            "/admin/api/users",
            &[("authorization", &basic("alice", "alice-pw"))],
            "",
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.error().as_str()),
        (401, "unsupported_scheme")
    );

    // bob is known but no administrator: row 15, never a 401.
    let bob = a.h.own_token("bob", &[], "pwd", now(), 600).await;
    let r = a
        .send(
            "GET",
            "/admin/api/users",
            &[("authorization", &format!("Bearer {bob}"))],
            "",
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error(), "insufficient_role");
    assert_eq!(r.json()["required_roles"], json!(["admin"]));
    assert!(r.challenges().is_empty());
    let r = a
        .send(
            "GET",
            "/admin/api/nothing-here",
            &[("authorization", &format!("Bearer {bob}"))],
            "",
        )
        .await;
    assert_eq!(r.status, 403, "unknown paths are refused alike");

    // carol is suspended: row 13 even with a token.
    let carol = a.h.own_token("carol", &[], "pwd", now(), 600).await;
    let r = a
        .send(
            "GET",
            "/admin/api/users",
            &[("authorization", &format!("Bearer {carol}"))],
            "",
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.error().as_str()),
        (403, "account_suspended")
    );

    // alice is an administrator.
    let r = a.admin("GET", "/admin/api/users", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<String> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"alice".to_owned()) && names.contains(&"bob".to_owned()),
        "{names:?}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(!r.text.contains("argon2"), "no password hash is listed");

    // API keys: the scope `gatehouse:admin` decides, not the owner's roles (row 16).
    let plain = a.h.api_key("alice", &["posts:read"], false, None).await;
    let r = a
        .send("GET", "/admin/api/users", &[("x-api-key", &plain)], "")
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error(), "insufficient_scope");
    assert!(
        r.challenges()
            .iter()
            .any(|c| c.contains("error=\"insufficient_scope\"")
                && c.contains("scope=\"gatehouse:admin\"")),
        "{:?}",
        r.challenges()
    );
    let admin_key = a.h.api_key("bob", &["gatehouse:admin"], false, None).await;
    let r = a
        .send("GET", "/admin/api/users", &[("x-api-key", &admin_key)], "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // …and a read-only admin key reads but changes nothing (row 19).
    let ro = a.h.api_key("bob", &["gatehouse:admin"], true, None).await;
    let r = a
        .send(
            "POST",
            "/admin/api/users/dave/sign-out",
            &[("x-api-key", &ro)],
            "",
        )
        .await;
    assert_eq!((r.status.as_u16(), r.error().as_str()), (403, "read_only"));

    // Refusals on the admin port are in the audit trail, under the admin route.
    a.audit_where("bob's refusal", |r| {
        r.route == "admin-api"
            && r.principal.as_deref() == Some("bob")
            && r.error.as_deref() == Some("insufficient_role")
    })
    .await;

    // The OpenAPI document needs no credentials and lists every operation.
    let r = a.send("GET", "/admin/api/openapi.json", &[], "").await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/admin/api/users",
        "/admin/api/users/{name}/suspend",
        "/admin/api/keys/revoke",
        "/admin/api/sessions/{id}",
        "/admin/api/locks/{kind}/{id}",
        "/admin/api/audit/export",
        "/admin/api/alerts/{seq}/ack",
        "/admin/api/config",
        "/admin/api/explain",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} is not documented");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_session_works_and_cross_site_forms_are_refused() {
    let a = Admin::start("").await;
    // The admin's browser gets the sign-in page with the 401.
    let r = a
        .send("GET", "/admin/api/users", &[("accept", "text/html")], "")
        .await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("/auth/login"), "{}", r.text);
    // Signing in on the admin port (the page's form, from its own origin) sets the session
    // cookie and returns to the page asked for.
    let origin = format!("http://{}", a.addr);
    let r = a
        .send(
            "POST",
            "/auth/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &origin),
                ("accept", "text/html"),
            ],
            "username=alice&password=alice-pw&return_to=%2Fadmin%2Fapi%2Fusers",
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some("/admin/api/users"));
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = a
        .send("GET", "/admin/api/users/bob", &[("cookie", &cookie)], "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["name"], "bob");

    // A cross-site form riding on the cookie: refused, nothing changed.
    let r = a
        .send(
            "POST",
            "/admin/api/users/bob/suspend",
            &[
                ("cookie", &cookie),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            r#"{"reason":"csrf"}"#,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error(), "csrf_rejected");
    let bob = a.h.gw.store.get_user("bob").await.unwrap().unwrap();
    assert_eq!(bob.status, gatehouse_store::AccountStatus::Active);

    // The same action from the admin port's own origin goes through.
    let r = a
        .send(
            "POST",
            "/admin/api/users/bob/suspend",
            &[
                ("cookie", &cookie),
                ("origin", &origin),
                ("sec-fetch-site", "same-origin"),
            ],
            r#"{"reason":"testing the console"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "suspended");
    let rec = a
        .audit_where("the session's suspend", |r| {
            r.detail.contains("suspended user `bob`")
        })
        .await;
    assert_eq!(rec.principal.as_deref(), Some("alice"));
    assert_eq!(rec.scheme.as_deref(), Some("session"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_works_and_each_change_names_its_actor() {
    let a = Admin::start("").await;

    // --- users ---
    let r = a
        .admin(
            "POST",
            "/admin/api/users",
            r#"{"name":"erin","password":"erin-pw-1","roles":["editor"],"tenant":"acme"}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["password"], true);
    assert!(!r.text.contains("erin-pw-1") && !r.text.contains("argon2"));
    let r = a
        .admin("POST", "/admin/api/users", r#"{"name":"erin"}"#)
        .await;
    assert_eq!((r.status.as_u16(), r.error().as_str()), (409, "conflict"));
    let r = a
        .admin("POST", "/admin/api/users", r#"{"name":"bad:name"}"#)
        .await;
    assert_eq!(
        (r.status.as_u16(), r.error().as_str()),
        (400, "invalid_request")
    );
    let r = a.admin("POST", "/admin/api/users", "{not json").await;
    assert_eq!(r.status, 400);
    let r = a.admin("GET", "/admin/api/users?q=acme&limit=1", "").await;
    let page = r.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert!(page["next_offset"].is_number(), "{page}");
    let r = a
        .admin("GET", "/admin/api/users?status=suspended", "")
        .await;
    let names: Vec<Value> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].clone())
        .collect();
    assert_eq!(names, [json!("carol")]);
    let r = a
        .admin(
            "PATCH",
            "/admin/api/users/erin",
            r#"{"roles":["editor","ops"],"tenant":null}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["roles"], json!(["editor", "ops"]));
    assert!(r.json()["tenant"].is_null());
    let r = a.admin("GET", "/admin/api/users/nobody", "").await;
    assert_eq!((r.status.as_u16(), r.error().as_str()), (404, "not_found"));

    // Suspending erin: her next request on the public port is row 13.
    let erin = basic("erin", "erin-pw-1");
    let before = a.h.get("/api/posts", &[("authorization", &erin)]).await;
    assert_eq!(before.status, 200, "{}", before.text);
    let r = a
        .admin("POST", "/admin/api/users/erin/suspend", r#"{"reason":""}"#)
        .await;
    assert_eq!(r.status, 400, "a reason is required");
    let r = a
        .admin(
            "POST",
            "/admin/api/users/erin/suspend",
            r#"{"reason":"Terms of Service"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let after = a.h.get("/api/posts", &[("authorization", &erin)]).await;
    assert_eq!(
        (after.status.as_u16(), after.error().as_str()),
        (403, "account_suspended")
    );
    assert_eq!(after.json()["reason"], "Terms of Service");
    let r = a.admin("POST", "/admin/api/users/erin/unsuspend", "").await;
    assert_eq!(r.json()["status"], "active");
    let back = a.h.get("/api/posts", &[("authorization", &erin)]).await;
    assert_eq!(back.status, 200, "{}", back.text);
    let r = a.admin("POST", "/admin/api/users/erin/reset-mfa", "").await;
    assert_eq!(r.json()["mfa"], false);

    // Sessions: erin signs in twice; one session is revoked, then all of them.
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let l = a.h.login("erin", "erin-pw-1").await;
        assert_eq!(l.status, 200, "{}", l.text);
        tokens.push(l.json()["access_token"].as_str().unwrap().to_owned());
    }
    let r = a.admin("GET", "/admin/api/sessions?user=erin", "").await;
    let sessions = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let first = sessions[0]["id"].as_str().unwrap().to_owned();
    let r = a
        .admin("DELETE", &format!("/admin/api/sessions/{first}"), "")
        .await;
    assert_eq!(r.json()["state"], "revoked", "{}", r.text);
    let r = a.admin("DELETE", "/admin/api/sessions/s_nothere", "").await;
    assert_eq!(r.status, 404);
    let r = a.admin("POST", "/admin/api/users/erin/sign-out", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    for t in &tokens {
        let got =
            a.h.get("/api/posts", &[("authorization", &format!("Bearer {t}"))])
                .await;
        assert_eq!(
            (got.status.as_u16(), got.error().as_str()),
            (401, "token_revoked"),
            "{}",
            got.text
        );
    }
    let r = a
        .admin("GET", "/admin/api/sessions?user=erin&all=true", "")
        .await;
    assert!(
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "revoked"),
        "{}",
        r.text
    );

    // --- API keys: created (shown once), listed without secrets, revoked three ways ---
    let mut created = Vec::new();
    for label in ["one", "two", "three"] {
        let r = a
            .admin(
                "POST",
                "/admin/api/keys",
                &json!({"user": "erin", "scopes": ["posts:read"], "expires": "30d", "label": label})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let v = r.json();
        created.push((
            v["id"].as_str().unwrap().to_owned(),
            v["prefix"].as_str().unwrap().to_owned(),
            v["key"].as_str().unwrap().to_owned(),
        ));
    }
    let r = a.admin("GET", "/admin/api/keys?user=erin", "").await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 3);
    for (_, _, key) in &created {
        assert!(!r.text.contains(key.as_str()), "a key is listed");
        let got = a.h.get("/api/posts", &[("x-api-key", key)]).await;
        assert_eq!(got.status, 200, "{}", got.text);
    }
    let r = a
        .admin(
            "POST",
            "/admin/api/keys",
            r#"{"user":"nobody","scopes":[]}"#,
        )
        .await;
    assert_eq!(r.status, 404);
    // By the full key, by id, by prefix.
    let (id0, _, key0) = &created[0];
    let (id1, _, key1) = &created[1];
    let (_, prefix2, key2) = &created[2];
    let mut forged = key0.clone();
    let at = forged.len() - 5;
    forged.replace_range(at..=at, if &key0[at..=at] == "A" { "B" } else { "A" });
    let r = a
        .admin(
            "POST",
            "/admin/api/keys/revoke",
            &json!({ "key": forged }).to_string(),
        )
        .await;
    assert_eq!(
        r.status, 404,
        "a key-shaped string with the wrong secret: {}",
        r.text
    );
    let r = a
        .admin(
            "POST",
            "/admin/api/keys/revoke",
            &json!({ "key": key0 }).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["id"], id0.as_str());
    assert_eq!(r.json()["state"], "revoked");
    let r = a
        .admin("DELETE", &format!("/admin/api/keys/{id1}"), "")
        .await;
    assert_eq!(r.json()["state"], "revoked", "{}", r.text);
    let r = a
        .admin(
            "POST",
            "/admin/api/keys/revoke",
            &json!({ "key": prefix2 }).to_string(),
        )
        .await;
    assert_eq!(r.json()["state"], "revoked", "{}", r.text);
    for key in [key0, key1, key2] {
        let got = a.h.get("/api/posts", &[("x-api-key", key)]).await;
        assert_eq!(
            (got.status.as_u16(), got.error().as_str()),
            (401, "invalid_credentials")
        );
    }
    let rec = a
        .audit_where("the full-key revoke", |r| {
            r.detail.contains(&format!("revoked API key `{id0}`"))
        })
        .await;
    assert_eq!(rec.principal.as_deref(), Some("alice"));
    assert!(
        !rec.detail.contains(key0.as_str()),
        "the key is not recorded"
    );

    // --- throttling locks: bob fails five times and is locked; unlocking lets him in ---
    let wrong = basic("bob", "wrong");
    for _ in 0..5 {
        a.h.get("/api/posts", &[("authorization", &wrong)]).await;
    }
    let locked =
        a.h.get("/api/posts", &[("authorization", &basic("bob", "bob-pw"))])
            .await;
    assert_eq!(locked.status, 429, "{}", locked.text);
    let r = a.admin("GET", "/admin/api/locks", "").await;
    let locks = r.json()["items"].as_array().unwrap().clone();
    assert!(
        locks
            .iter()
            .any(|l| l["kind"] == "account" && l["id"] == "bob"),
        "{locks:?}"
    );
    let r = a.admin("DELETE", "/admin/api/locks/account/bob", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = a.admin("DELETE", "/admin/api/locks/account/bob", "").await;
    assert_eq!(r.status, 404, "nothing left to unlock");
    let r = a.admin("DELETE", "/admin/api/locks/planet/mars", "").await;
    assert_eq!(r.status, 400);
    let ok =
        a.h.get("/api/posts", &[("authorization", &basic("bob", "bob-pw"))])
            .await;
    assert_eq!(ok.status, 200, "{}", ok.text);

    // --- delete ---
    let r = a.admin("DELETE", "/admin/api/users/erin", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = a.admin("GET", "/admin/api/users/erin", "").await;
    assert_eq!(r.status, 404);

    // Every change is an audit record naming alice.
    for what in [
        "created user `erin`",
        "changed user `erin`",
        "suspended user `erin`",
        "unsuspended user `erin`",
        "reset MFA of user `erin`",
        "revoked session `",
        "signed out user `erin`",
        "created API key `",
        "unlocked account `bob`",
        "deleted user `erin`",
    ] {
        let rec = a
            .audit_where(what, |r| r.route == "admin-api" && r.detail.contains(what))
            .await;
        assert_eq!(rec.principal.as_deref(), Some("alice"), "{what}: {rec:?}");
        assert_eq!(rec.scheme.as_deref(), Some("bearer"));
        assert!(rec.error.is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_paging_export_alerts_config_and_explain() {
    let a = Admin::start("").await;
    // Some refusals to read back.
    for i in 0..5 {
        a.h.get(
            &format!("/api/admin/users?i={i}"),
            &[("authorization", &basic("bob", "bob-pw"))],
        )
        .await;
    }
    a.h.get("/api/posts", &[]).await;
    a.audit_where("the five refusals", |r| r.path == "/api/posts")
        .await;

    // A page of two, then the next by the cursor; filters by reason, user and route.
    let q = "/admin/api/audit?reason=insufficient_role&user=bob&route=admin&limit=2";
    let r = a.admin("GET", q, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let first = r.json();
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[0]["seq"].as_i64() > items[1]["seq"].as_i64(),
        "newest first"
    );
    let next = first["next"].as_i64().unwrap();
    let r = a.admin("GET", &format!("{q}&before={next}"), "").await;
    let second = r.json();
    let older = second["items"].as_array().unwrap();
    assert_eq!(older.len(), 2);
    assert!(older[0]["seq"].as_i64().unwrap() < next);
    for e in items.iter().chain(older) {
        assert_eq!(e["error"], "insufficient_role");
        assert_eq!(e["principal"], "bob");
    }
    let r = a
        .admin("GET", "/admin/api/audit?status=401&since=1h", "")
        .await;
    let items = r.json()["items"].as_array().unwrap().clone();
    assert!(!items.is_empty() && items.iter().all(|e| e["status"] == 401));
    let rid = items[0]["request_id"].as_str().unwrap().to_owned();
    let r = a
        .admin("GET", &format!("/admin/api/audit?request_id={rid}"), "")
        .await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    let r = a.admin("GET", "/admin/api/audit?since=yesterday", "").await;
    assert_eq!(r.status, 400);

    // Export: JSON lines and CSV, oldest first, every matching record.
    let r = a
        .admin(
            "GET",
            "/admin/api/audit/export?user=bob&reason=insufficient_role",
            "",
        )
        .await;
    assert_eq!(r.header("content-type"), Some("application/jsonl"));
    let lines: Vec<Value> = r
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{}", r.text);
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
    );
    let r = a
        .admin(
            "GET",
            "/admin/api/audit/export?format=csv&user=bob&reason=insufficient_role",
            "",
        )
        .await;
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let rows: Vec<&str> = r.text.lines().collect();
    assert_eq!(rows.len(), 6, "header + 5: {}", r.text);
    assert!(rows[0].starts_with("seq,time,kind,request_id,route"));
    assert!(rows[1].contains(",insufficient_role,"), "{}", rows[1]);
    let r = a
        .admin("GET", "/admin/api/audit/export?format=xml", "")
        .await;
    assert_eq!(r.status, 400);

    // Alerts: none yet; acknowledging a missing one is a 404.
    let r = a.admin("GET", "/admin/api/alerts", "").await;
    assert_eq!(r.json()["items"], json!([]));
    let r = a.admin("POST", "/admin/api/alerts/999999/ack", "").await;
    assert_eq!(r.status, 404);

    // The running config: secrets redacted, a hash, the load time.
    let r = a.admin("GET", "/admin/api/config", "").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(
        !r.text.contains(common::HS_SECRET),
        "the issuer secret is shown"
    );
    assert_eq!(v["config"]["issuers"][0]["keys"]["secret"], "<redacted>");
    assert_eq!(v["hash"].as_str().unwrap().len(), 64);
    assert!(v["loaded_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["config"]["admin"]["roles"], json!(["admin"]));
    assert!(v["config"]["routes"].as_array().unwrap().len() > 5);

    // Explain: the decision and its trace, without counting anything.
    let r = a
        .admin(
            "POST",
            "/admin/api/explain",
            &json!({
                "method": "GET",
                "path": "/api/admin/users",
                "headers": {"Authorization": basic("bob", "bob-pw")},
            })
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["status"], 403);
    assert_eq!(v["error"], "insufficient_role");
    assert_eq!(v["row"], 15);
    assert_eq!(v["route"], "admin");
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(
        steps.contains(&"route") && steps.contains(&"verify"),
        "{steps:?}"
    );
    // Wrong passwords through explain lock nobody out.
    for _ in 0..8 {
        let r = a
            .admin(
                "POST",
                "/admin/api/explain",
                &json!({"method": "GET", "path": "/api/posts",
                        "headers": [["Authorization", basic("bob", "nope")]]})
                .to_string(),
            )
            .await;
        assert_eq!(r.json()["error"], "invalid_credentials");
    }
    let ok =
        a.h.get("/api/posts", &[("authorization", &basic("bob", "bob-pw"))])
            .await;
    assert_eq!(ok.status, 200, "explain counted failures: {}", ok.text);
    let r = a
        .admin("POST", "/admin/api/explain", r#"{"method":"GET"}"#)
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_open_unless_metrics_auth() {
    let open = Admin::start("").await;
    let r = open.send("GET", "/metrics", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("# TYPE"), "{}", r.text);

    let closed = Admin::start("[admin]\nmetrics_auth = true\nroles = [\"ops\"]\n").await;
    let r = closed.send("GET", "/metrics", &[], "").await;
    assert_eq!(
        (r.status.as_u16(), r.error().as_str()),
        (401, "missing_credentials")
    );
    // `[admin] roles` names the administrators: bob (editor) is not one, alice (ops) is.
    let bob = closed.h.own_token("bob", &[], "pwd", now(), 600).await;
    let r = closed
        .send(
            "GET",
            "/metrics",
            &[("authorization", &format!("Bearer {bob}"))],
            "",
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.error().as_str()),
        (403, "insufficient_role")
    );
    assert_eq!(r.json()["required_roles"], json!(["ops"]));
    let r = closed.admin("GET", "/metrics", "").await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("# TYPE"));
}

/// Three nodes on one store (PostgreSQL with `GATEHOUSE_TEST_STORE=postgres`): each folds
/// its own answers, and any node's admin API shows the sum.
#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_show_one_picture() {
    gatehouse_server::install_crypto();
    let (store, _schema) = common::test_store().await;
    common::seed(store.as_ref()).await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let upstream = common::echo_upstream(rx.clone()).await;
        let h = Harness::start_store(
            &common::config_text(upstream, ""),
            upstream,
            stop,
            rx,
            std::sync::Arc::clone(&store),
        )
        .await;
        nodes.push(h);
    }
    let bob = basic("bob", "bob-pw");
    for _ in 0..3 {
        nodes[0].get("/api/posts", &[]).await;
    }
    for _ in 0..2 {
        nodes[1]
            .get("/api/admin/users", &[("authorization", &bob)])
            .await;
    }
    nodes[2].get("/.git/config", &[]).await;
    let t = now();
    for h in &nodes {
        assert!(gatehouse_server::admin::stats::flush(&h.gw, t).await > 0);
        // A second reading without traffic adds nothing.
        assert_eq!(gatehouse_server::admin::stats::flush(&h.gw, t).await, 0);
    }
    let first = nodes.remove(0);
    let a = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(gatehouse_server::serve_on(
            l,
            gatehouse_server::admin_router(std::sync::Arc::clone(&first.gw)),
            std::future::pending(),
        ));
        Admin { h: first, addr }
    };
    let r = a.admin("GET", "/admin/api/stats?range=hour", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let mut counts: Vec<(u64, String, u64)> = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["counts"].as_array().unwrap().clone())
        .map(|c| {
            (
                c["status"].as_u64().unwrap(),
                c["reason"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            (401, "missing_credentials".to_owned(), 3),
            (403, "forbidden_path".to_owned(), 1),
            (403, "insufficient_role".to_owned(), 2),
        ],
        "{v}"
    );
    assert_eq!(v["routes"][0], json!({"route": "posts", "count": 3}), "{v}");
    let r = a
        .admin("GET", "/admin/api/stats?range=hour&answers=all", "")
        .await;
    assert!(r.text.contains("\"count\""), "{}", r.text);
    let r = a.admin("GET", "/admin/api/stats?range=year", "").await;
    assert_eq!(r.status, 400);
    let r = a.admin("GET", "/admin/api/stats?step=90", "").await;
    assert_eq!(r.status, 400);

    // Top refused routes (all nodes), users and addresses (the audit trail).
    for h in [&a.h, &nodes[0], &nodes[1]] {
        h.gw.shutdown().await;
    }
    let r = a.admin("GET", "/admin/api/stats/top?range=hour", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["routes"][0]["route"], "posts", "{v}");
    assert_eq!(v["users"][0], json!({"user": "bob", "count": 2}), "{v}");
    assert_eq!(v["addresses"][0]["address"], "127.0.0.1", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_page_is_guarded_and_live_refusals_stream() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let a = Admin::start("").await;
    // The page: 401 with the sign-in page for a browser; the page for an administrator,
    // with a CSP that allows its own script and style only and no framing.
    let r = a
        .send("GET", "/admin/", &[("accept", "text/html")], "")
        .await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("/auth/login"));
    let bob = a.h.own_token("bob", &[], "pwd", now(), 600).await;
    let r = a
        .send(
            "GET",
            "/admin/",
            &[("authorization", &format!("Bearer {bob}"))],
            "",
        )
        .await;
    assert_eq!(r.status, 403);
    let r = a.admin("GET", "/admin/", "").await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("<title>Gatehouse console</title>"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    for (path, ct) in [
        ("/admin/assets/console.js", "text/javascript"),
        ("/admin/assets/console.css", "text/css"),
    ] {
        let r = a.send("GET", path, &[], "").await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with(ct));
    }
    let r = a.admin("GET", "/admin/api/me", "").await;
    assert_eq!(r.json(), json!({"subject": "alice", "scheme": "bearer"}));

    // Live: a refusal on the public port arrives as a server-sent event.
    let token = a.h.own_token("alice", &[], "pwd", now(), 600).await;
    let mut s = tokio::net::TcpStream::connect(a.addr).await.unwrap();
    let req = format!(
        "GET /admin/api/live HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
        a.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // The stream opens with a comment before the refusal is made.
    while !seen.contains(": live") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "the stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("text/event-stream"), "{seen}");
    a.h.get("/.git/config", &[]).await;
    let read = async {
        while !seen.contains("event: refusal") || !seen.contains("forbidden_path") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stream closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    // Bounded so a broken stream fails instead of hanging (the poll is once a second).
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("no refusal event");
}

/// Issue 14 ("change roles / tenant / attributes") for issue 13's attributes: shown by the
/// user endpoints, set and removed by a JSON merge patch, checked as `gatehouse user set`
/// checks them, audited with the actor, and seen by the gateway at once (the cluster event of
/// the CLI path).
#[tokio::test(flavor = "multi_thread")]
async fn attributes_are_shown_set_and_removed_by_an_administrator() {
    let a = Admin::start(
        r#"
[[route]]
name = "checkout"
path = "/checkout/**"
auth = ["bearer", "basic"]

[[route.require]]
attribute = "payment_method"
present = true
code = "payment_method_required"
"#,
    )
    .await;
    let bob = basic("bob", "bob-pw");
    let r = a.admin("GET", "/admin/api/users/bob", "").await;
    assert_eq!(r.json()["attributes"], json!({}), "{}", r.text);
    let refused = a.h.get("/checkout/now", &[("authorization", &bob)]).await;
    assert_eq!(
        (refused.status.as_u16(), refused.error().as_str()),
        (403, "requirement_not_met")
    );

    let r = a
        .admin(
            "PATCH",
            "/admin/api/users/bob",
            r#"{"attributes":{"payment_method":"visa","plan":"pro","email_verified":true,"seats":3,"groups":["a","b"]}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["attributes"],
        json!({"payment_method": "visa", "plan": "pro", "email_verified": true, "seats": 3, "groups": ["a", "b"]})
    );
    let ok = a.h.get("/checkout/now", &[("authorization", &bob)]).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let r = a.admin("GET", "/admin/api/users?q=bob", "").await;
    assert_eq!(
        r.json()["items"][0]["attributes"]["plan"],
        "pro",
        "{}",
        r.text
    );
    let record = a
        .audit_where("attributes set", |e| {
            e.detail.contains("changed user `bob`: attributes set [")
        })
        .await;
    assert_eq!(record.principal.as_deref(), Some("alice"));
    assert!(
        record.detail.contains("payment_method") && !record.detail.contains("visa"),
        "names, not values: {}",
        record.detail
    );

    // `null` removes one; the others stay.
    let r = a
        .admin(
            "PATCH",
            "/admin/api/users/bob",
            r#"{"attributes":{"payment_method":null}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["attributes"]["payment_method"], Value::Null);
    assert_eq!(r.json()["attributes"]["plan"], "pro");
    let again = a.h.get("/checkout/now", &[("authorization", &bob)]).await;
    assert_eq!(again.error(), "requirement_not_met", "{}", again.text);

    // Checked as the CLI checks: a bad name, a value of no attribute shape, a value too long.
    let long = format!(r#"{{"attributes":{{"note":"{}"}}}}"#, "x".repeat(2000));
    for bad in [
        r#"{"attributes":{"e-mail":true}}"#,
        r#"{"attributes":{"org":{"plan":"pro"}}}"#,
        r#"{"attributes":{"ids":[1,2]}}"#,
        long.as_str(),
    ] {
        let r = a.admin("PATCH", "/admin/api/users/bob", bad).await;
        assert_eq!(
            (r.status.as_u16(), r.error().as_str()),
            (400, "invalid_request"),
            "{bad}: {}",
            r.text
        );
    }
    let r = a.admin("GET", "/admin/api/users/bob", "").await;
    assert_eq!(
        r.json()["attributes"],
        json!({"plan": "pro", "email_verified": true, "seats": 3, "groups": ["a", "b"]})
    );
    let r = a
        .admin(
            "PATCH",
            "/admin/api/users/nobody",
            r#"{"attributes":{"plan":"pro"}}"#,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.error().as_str()), (404, "not_found"));
}
