//! `gatehouse probe` through the binary, against `gatehouse mock` as the target: a YAML
//! OpenAPI document whose `securitySchemes` choose the personas, `${ENV}` in the probe file,
//! the exit status of a clean run (0), of a run with a finding (1) and of a bad document or
//! an unreachable target (2).

use std::time::Duration;

use crate::support::{Running, TempDir, command, free_addr, http, poll};

const STUBS: &str = r#"[
  {"request": {"method": "GET", "urlPath": "/items",
               "headers": {"Authorization": {"equalTo": "Bearer good-token"}}},
   "response": {"status": 200, "jsonBody": []}, "priority": 1},
  {"request": {"method": "GET", "urlPath": "/health"},
   "response": {"status": 200, "jsonBody": {"ok": true}}, "priority": 1}
]"#;

const API: &str = r#"openapi: 3.0.3
info: {title: zoo, version: "1"}
components:
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer}
    basicAuth: {type: http, scheme: basic}
paths:
  /items:
    get:
      security:
        - bearerAuth: []
  /health:
    get:
      security: []
"#;

fn probe(dir: &TempDir, args: &[&str], token: &str) -> std::process::Output {
    command(&dir.path)
        .arg("probe")
        .args(args)
        .env("PROBE_CLI_TOKEN", token)
        .output()
        .expect("run gatehouse probe")
}

#[test]
fn probe_reads_yaml_openapi_and_env_and_exits_by_result() {
    let dir = TempDir::new("probe-cli");
    let stubs = dir.write("stubs.json", STUBS);
    let addr = free_addr();
    let port = addr.port().to_string();
    let _m = Running::spawn(
        &dir.path,
        &[
            "mock",
            "--stubs",
            stubs.to_str().unwrap(),
            "--port",
            &port,
            "--preset",
            "missing-credentials",
        ],
    );
    poll(Duration::from_secs(20), "mock listening", || {
        http(addr, "GET", "/health", &[]).ok()
    });
    // `alice` is a Basic persona: the Bearer-only operation must not be sent it.
    let spec = dir.write(
        "probe.toml",
        &format!(
            "target = \"http://{addr}\"\n[personas.svc]\nheaders = {{ Authorization = \"Bearer ${{PROBE_CLI_TOKEN}}\" }}\n[personas.alice]\nheaders = {{ Authorization = \"Basic YWxpY2U6cHc=\" }}\n"
        ),
    );
    let api = dir.write("api.yaml", API);
    let args = [
        "--spec",
        spec.to_str().unwrap(),
        "--openapi",
        api.to_str().unwrap(),
        "--format",
        "json",
        "-q",
    ];
    let out = probe(&dir, &args, "good-token");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["summary"]["passed"], true);
    assert_eq!(r["summary"]["incomplete"], 0);
    // The preset answers a bad token like a missing one: no `error="invalid_token"` (low).
    let checks: Vec<(&str, &str)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["check"].as_str().unwrap(), f["persona"].as_str().unwrap()))
        .collect();
    assert_eq!(checks, [("invalid-token-no-error", "garbage-token")]);

    // A stale token: the allowed persona is refused, the run fails.
    let out = probe(&dir, &args, "stale-token");
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["findings"][0]["check"], "allowed-refused");
    assert_eq!(r["findings"][0]["persona"], "svc");

    // Bad YAML: exit 2 with the line.
    let bad = dir.write("bad.yaml", "openapi: 3.0.3\npaths:\n  /a: [unclosed\n");
    let mut bad_args = args;
    bad_args[3] = bad.to_str().unwrap();
    let out = probe(&dir, &bad_args, "good-token");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid OpenAPI YAML"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Unreachable: exit 2.
    let gone = free_addr();
    let out = probe(
        &dir,
        &[&args[..], &["--target", &format!("http://{gone}")]].concat(),
        "good-token",
    );
    assert_eq!(out.status.code(), Some(2));
}
