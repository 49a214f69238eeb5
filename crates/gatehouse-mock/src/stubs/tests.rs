use http::{HeaderMap, Method};

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

fn first_match<'s>(
    stubs: &'s [Stub],
    method: &str,
    target: &str,
    h: &HeaderMap,
) -> Option<&'s str> {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    stubs
        .iter()
        .find(|s| s.matches(&m, target, h))
        .map(|s| s.name.as_str())
}

#[test]
fn simple_form_object_or_array_with_string_or_json_body() {
    let one = parse(r#"{"method": "GET", "url": "/a", "status": 201, "body": "hi"}"#).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].status, 201);
    assert_eq!(one[0].body, "hi");
    assert!(one[0].response_headers.get("content-type").is_none());
    let many =
        parse(r#"[{"url": "/a", "body": {"x": 1}, "headers": {"X-A": "1"}}, {"url": "/b?q=1"}]"#)
            .unwrap();
    assert_eq!(many[0].body, r#"{"x":1}"#);
    assert_eq!(many[0].response_headers["content-type"], "application/json");
    assert_eq!(many[0].response_headers["x-a"], "1");
    let h = HeaderMap::new();
    // A `url` without `?` matches the path whatever the query; with `?`, exactly.
    assert_eq!(first_match(&many, "POST", "/a?z=9", &h), Some("stub 1"));
    assert_eq!(first_match(&many, "GET", "/b?q=1", &h), Some("stub 2"));
    assert_eq!(first_match(&many, "GET", "/b?q=2", &h), None);
    assert_eq!(first_match(&many, "GET", "/b", &h), None);
}

#[test]
fn wiremock_urls_headers_and_priorities() {
    let stubs = parse(
        r#"{"mappings": [
  {"request": {"method": "GET", "urlPattern": "/users/[0-9]+"},
   "response": {"status": 200, "jsonBody": {"id": 1}}},
  {"name": "admin", "priority": 1,
   "request": {"method": "GET", "urlPath": "/users/1",
               "headers": {"Authorization": {"contains": "admin"}, "X-Trace": {"absent": true}}},
   "response": {"status": 200, "body": "admin view", "headers": {"Set-Cookie": ["a=1", "b=2"]}}},
  {"request": {"method": "ANY", "url": "/exact?x=1",
               "headers": {"Accept": {"equalTo": "TEXT/PLAIN", "caseInsensitive": true}}},
   "response": {"status": 418}}
]}"#,
    )
    .unwrap();
    assert_eq!(stubs[0].name, "admin", "priority 1 sorts first");
    let admin = headers(&[("authorization", "Bearer admin-token")]);
    assert_eq!(
        first_match(&stubs, "GET", "/users/1", &admin),
        Some("admin")
    );
    assert_eq!(
        stubs[0]
            .response_headers
            .get_all("set-cookie")
            .iter()
            .count(),
        2
    );
    // The header condition fails: the lower-priority pattern answers.
    let user = headers(&[("authorization", "Bearer user")]);
    assert_eq!(
        first_match(&stubs, "GET", "/users/1", &user),
        Some("stub 1")
    );
    let traced = headers(&[("authorization", "admin"), ("x-trace", "1")]);
    assert_eq!(
        first_match(&stubs, "GET", "/users/1", &traced),
        Some("stub 1")
    );
    // urlPattern matches the whole path and query, not a part of it.
    assert_eq!(first_match(&stubs, "GET", "/users/12x", &user), None);
    assert_eq!(first_match(&stubs, "GET", "/api/users/12", &user), None);
    let accept = headers(&[("accept", "text/plain")]);
    assert_eq!(
        first_match(&stubs, "DELETE", "/exact?x=1", &accept),
        Some("stub 3")
    );
    assert_eq!(first_match(&stubs, "DELETE", "/exact", &accept), None);
}

#[test]
fn equal_priorities_keep_file_order() {
    let stubs = parse(r#"[{"url": "/a", "body": "1"}, {"url": "/a", "body": "2"}]"#).unwrap();
    assert_eq!(stubs[0].body, "1");
}

#[test]
fn errors_name_the_line() {
    let bad_json = "[\n  {\"url\": \"/a\"},\n  {\"url\": \"/b\",}\n]";
    let e = parse(bad_json).unwrap_err();
    assert_eq!(e[0].line, 3, "{e:?}");
    assert!(e[0].message.starts_with("not valid JSON"), "{e:?}");

    let unknown = "[\n  {\"url\": \"/a\"},\n  {\n    \"url\": \"/b\",\n    \"stauts\": 200\n  }\n]";
    let e = parse(unknown).unwrap_err();
    assert_eq!(e[0].line, 5, "{e:?}");
    assert!(e[0].message.contains("stauts"), "{e:?}");

    let many = r#"[
  {"url": "/a", "status": 42},
  {"request": {"urlPattern": "(("}, "response": {}},
  {"request": {"headers": {"X": {"equalTo": "a", "contains": "b"}}}, "response": {}},
  {"request": {"bodyPatterns": []}, "response": {}}
]"#;
    let e = parse(many).unwrap_err();
    let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 4, 5], "{e:?}");
    assert!(e[1].message.contains("not a valid regex"), "{e:?}");
    assert!(e[3].message.contains("bodyPatterns"), "{e:?}");
    assert!(parse("42").is_err());
}
