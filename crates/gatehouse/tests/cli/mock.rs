//! `gatehouse mock` through the binary: a bad stub file exits 2 naming the line; a running
//! mock answers stubs and presets and keeps a journal.

use std::time::Duration;

use crate::support::{Running, TempDir, free_addr, http, poll, run_in};

#[test]
fn a_bad_stub_file_exits_2_and_names_the_line() {
    let dir = TempDir::new("mock-bad");
    let file = dir.write(
        "stubs.json",
        "[\n  {\"url\": \"/a\", \"body\": \"ok\"},\n  {\"url\": \"/b\", \"staus\": 200}\n]\n",
    );
    let out = run_in(&dir.path, &["mock", "--stubs", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2), "{out:#?}");
    assert!(out.stderr.contains("line 3: stub 2"), "{out:#?}");
    assert!(out.stderr.contains("staus"), "{out:#?}");
    // Broken JSON: the line of the syntax error.
    let file = dir.write("broken.json", "{\n  \"url\": \"/a\",\n  \"body\": \n}\n");
    let out = run_in(&dir.path, &["mock", "--stubs", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2), "{out:#?}");
    assert!(out.stderr.contains("line 4: not valid JSON"), "{out:#?}");
    let out = run_in(&dir.path, &["mock", "--preset", "expired"], "");
    assert_eq!(out.status.code(), Some(2), "{out:#?}");
    assert!(out.stderr.contains("unknown preset `expired`"), "{out:#?}");
}

#[test]
fn a_running_mock_answers_stubs_then_presets_and_journals_requests() {
    let dir = TempDir::new("mock-run");
    let file = dir.write(
        "stubs.json",
        r#"[{"method": "GET", "url": "/api/me", "body": {"name": "bob"}}]"#,
    );
    let addr = free_addr();
    let port = addr.port().to_string();
    let _m = Running::spawn(
        &dir.path,
        &[
            "mock",
            "--stubs",
            file.to_str().unwrap(),
            "--port",
            &port,
            "--preset",
            "expired-token",
            "--scheme",
            "bearer,basic",
        ],
    );
    let me = poll(Duration::from_secs(20), "mock listening", || {
        http(addr, "GET", "/api/me", &[]).ok()
    });
    assert_eq!(me.status, 200);
    assert_eq!(me.body, r#"{"name":"bob"}"#);
    let r = http(
        addr,
        "GET",
        "/api/posts",
        &[("Authorization", "Bearer old")],
    )
    .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.error().as_deref(), Some("token_expired"));
    assert_eq!(
        r.all("www-authenticate"),
        [
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token expired\""
        ]
    );
    let j = http(addr, "GET", "/__gatehouse/requests", &[]).unwrap();
    let entries: serde_json::Value = serde_json::from_str(&j.body).unwrap();
    assert_eq!(entries[1]["headers"]["authorization"], "Bearer old");
    assert_eq!(entries[1]["answered_by"]["name"], "expired-token");
}
