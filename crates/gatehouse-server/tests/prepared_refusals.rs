//! Prepared refusals (`prepared_refusals.rs`) answer exactly what core's table renders: for every
//! route of the shared test config (plus a Digest route and `[defaults]`), every refusal
//! without facts of its own and both values of `hidden`, the prepared answer's status,
//! headers (names, values, order) and body equal `rendered_response(render(…))` for
//! request ids and times the template was not built with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use gatehouse_core::deny::Deny;
use gatehouse_server::exchange::rendered_response;
use gatehouse_server::gateway::RenderArgs;
use gatehouse_server::prepared_refusals::PREPARED_KINDS;
use http_body_util::BodyExt as _;

async fn parts(r: http::Response<axum::body::Body>) -> (u16, Vec<(String, Vec<u8>)>, Vec<u8>) {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn prepared_answers_equal_the_rendered_ones() {
    let h = Harness::start_with(
        r#"
[[route]]
name = "digest"
path = "/digest/**"
auth = ["digest", "bearer"]
"#,
    )
    .await;
    let rt = h.gw.runtime();
    let routes = rt.policy.routes();
    let digest = routes.iter().position(|r| r.name() == "digest").unwrap();
    let mut prepared = 0;
    for round in 0..2_i64 {
        for route in std::iter::once(None).chain((0..routes.len()).map(Some)) {
            for deny in &PREPARED_KINDS {
                for hidden in [false, true] {
                    let id = h.gw.ids.next();
                    let now = gatehouse_server::clock::now() + round * 86_399;
                    let args = RenderArgs {
                        route,
                        html: false,
                        form_post: false,
                        grpc: false,
                        request_id: &id,
                        now,
                        return_to: "/some/where?q=1",
                    };
                    let got = rt.refusals.response(&h.gw, &rt, &args, deny, hidden);
                    let challenged =
                        matches!(deny, Deny::MissingCredentials | Deny::InvalidCredentials);
                    if route == Some(digest) && challenged && !hidden {
                        // A Digest challenge carries a fresh nonce: never prepared.
                        assert!(got.is_none(), "{deny:?} prepared on a Digest route");
                        continue;
                    }
                    let got = got.unwrap_or_else(|| panic!("{deny:?} on {route:?} not prepared"));
                    let want = rendered_response(h.gw.render(&rt, &args, deny, hidden), true);
                    assert_eq!(
                        parts(got).await,
                        parts(want).await,
                        "{deny:?} on route {route:?}, hidden {hidden}"
                    );
                    prepared += 1;
                }
            }
        }
    }
    assert!(prepared > 100, "only {prepared} answers compared");
}

#[tokio::test]
async fn a_request_id_json_would_escape_is_rendered_instead() {
    let h = Harness::start().await;
    let rt = h.gw.runtime();
    let now = gatehouse_server::clock::now();
    let deny = Deny::MissingCredentials;
    let args = |request_id| RenderArgs {
        route: None,
        html: false,
        form_post: false,
        grpc: false,
        request_id,
        now,
        return_to: "/",
    };
    let prepared = |id| rt.refusals.response(&h.gw, &rt, &args(id), &deny, false);
    assert!(prepared("ok-id").is_some());
    assert!(prepared("a\"b").is_none());
    // HTML pages carry the request target: always rendered.
    let html = RenderArgs {
        html: true,
        ..args("ok-id")
    };
    assert!(
        rt.refusals
            .response(&h.gw, &rt, &html, &deny, false)
            .is_none()
    );
}
