//! `gatehouse demo`: every `curl` line of the printed tour answers the status it promises.
//! This is the README's quick start, replayed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{Response, Running, TempDir, basic, http};

/// Splits a shell command line: words, `'single'` and `"double"` quotes (no escapes, which
/// the tour does not use).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quote in {line:?}");
    if in_word {
        words.push(cur);
    }
    words
}

/// Runs a tour `curl` line with our own client: `-i`, `-u user:pw`, `-H 'N: v'`, `-X M`, URL.
fn replay(line: &str) -> Response {
    let words = shell_words(line);
    assert_eq!(words.first().map(String::as_str), Some("curl"), "{line}");
    let mut method = "GET".to_owned();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut url = None;
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        match w.as_str() {
            "-i" => {}
            "-u" => {
                let (u, p) = it
                    .next()
                    .and_then(|v| v.split_once(':'))
                    .expect("-u user:pw");
                headers.push(("Authorization".to_owned(), basic(u, p)));
            }
            "-H" => {
                let (n, v) = it
                    .next()
                    .and_then(|v| v.split_once(':'))
                    .expect("-H 'N: v'");
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
            "-X" => method = it.next().expect("-X METHOD").clone(),
            u if u.starts_with("http://") => url = Some(u.to_owned()),
            other => {
                panic!("the tour uses a curl option this test does not know: {other} in {line}")
            }
        }
    }
    let url = url.unwrap_or_else(|| panic!("no URL in {line}"));
    let rest = &url["http://".len()..];
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority.parse().expect("the tour uses IP:port");
    let target = if target.is_empty() { "/" } else { target };
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    http(addr, &method, target, &h).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn demo_tour_answers_what_it_promises() {
    let dir = TempDir::new("demo");
    let demo = Running::spawn(
        &dir.path,
        &[
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(line) = demo.line(left) else {
            panic!(
                "the demo stopped printing before the tour ended:\n{}\nstderr:\n{}",
                lines.join("\n"),
                demo.stderr()
            );
        };
        let done = line.contains("Press Ctrl-C to stop.");
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(
        lines[0].starts_with("gatehouse demo: gateway on http://127.0.0.1:"),
        "{}",
        lines[0]
    );
    // The console is served too, and guarded: anonymous is a 401 with challenges.
    let console = lines
        .iter()
        .find_map(|l| l.strip_prefix("Console: http://"))
        .and_then(|l| l.split_once("/admin/"))
        .map(|(a, _)| a.parse::<std::net::SocketAddr>().unwrap())
        .unwrap_or_else(|| panic!("no console line: {lines:#?}"));
    let r = http(console, "GET", "/admin/api/users", &[]).unwrap();
    assert_eq!(r.status, 401, "{r:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("sign in as alice / alice-password"))
    );

    // Each step: `NN. what`, `    curl …`, `    → <status> …`.
    let mut steps = Vec::new();
    for pair in lines.windows(2) {
        let (cmd, expect) = (pair[0].trim(), pair[1].trim());
        if cmd.starts_with("curl ") {
            let promise = expect
                .strip_prefix("→ ")
                .unwrap_or_else(|| panic!("`{cmd}` is not followed by `→ …`"));
            steps.push((cmd.to_owned(), promise.to_owned()));
        }
    }
    let numbered = lines
        .iter()
        .filter(|l| {
            let t = l.trim_start();
            t.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    assert_eq!(steps.len(), numbered, "every numbered step has a curl line");
    assert!(
        steps.len() >= 15,
        "the tour covers the table: {}",
        steps.len()
    );

    let mut statuses = std::collections::BTreeSet::new();
    for (cmd, promise) in &steps {
        let mut words = promise.split_whitespace();
        let status: u16 = words
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in the promise `{promise}`"));
        let r = replay(cmd);
        assert_eq!(r.status, status, "`{cmd}` promised `{promise}`, got {r:#?}");
        // Refusals name their `error` code right after the status.
        if status >= 400 {
            let code = words
                .next()
                .map(|w| w.trim_end_matches([',', '.']))
                .unwrap_or_default();
            assert_eq!(r.error().as_deref(), Some(code), "`{cmd}`: {r:#?}");
        } else {
            assert!(r.body.contains("\"upstream\":\"demo\""), "`{cmd}`: {r:#?}");
        }
        statuses.insert(status);
    }
    assert!(
        [200, 400, 401, 403, 404]
            .iter()
            .all(|s| statuses.contains(s)),
        "{statuses:?}"
    );

    // The browser line after the tour: same status, an HTML page.
    let browser = lines
        .iter()
        .find_map(|l| l.split_once("with the same status: ").map(|(_, c)| c))
        .expect("the tour shows the browser variant");
    let r = replay(browser);
    assert_eq!(r.status, 401, "{r:#?}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{r:#?}"
    );
}
