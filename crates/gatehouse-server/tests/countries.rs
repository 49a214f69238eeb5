//! Row 26 end to end: the client's country from a MaxMind DB generated in the test, read
//! from the address the trusted proxies give (`X-Forwarded-For`), over a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::geo::{DE, FR, GeoDb, KP, NETWORKS, US};
use common::{Harness, Resp, basic};
use serde_json::Value;

async fn start() -> (Harness, GeoDb) {
    let db = GeoDb::new(NETWORKS);
    (Harness::start_with(&db.config()).await, db)
}

async fn from(h: &Harness, path: &str, xff: Option<&str>) -> Resp {
    let auth = basic("alice", "alice-pw");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(x) = xff {
        headers.push(("X-Forwarded-For", x));
    }
    h.get(path, &headers).await
}

fn assert_geo_blocked(r: &Resp, status: u16, country: Value) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let b = r.json();
    assert_eq!(b["error"], "geo_blocked", "{b}");
    assert_eq!(b["status"], status);
    assert_eq!(b["country"], country, "{b}");
    // Decided before credentials, like row 3: no challenge, signing in cannot change it.
    assert!(r.challenges().is_empty(), "{:?}", r.challenges());
}

#[tokio::test]
async fn row26_an_allowed_country_goes_on_to_credentials() {
    let (h, _db) = start().await;
    let r = from(&h, "/geo/eu/report", Some(DE)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["user"], "alice");
    // IPv6 clients are looked up as such.
    let r = from(&h, "/geo/eu/report", Some(FR)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Allowed, but still no credentials: row 5 as usual.
    let r = h.get("/geo/eu/report", &[("X-Forwarded-For", DE)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "missing_credentials");
}

#[tokio::test]
async fn row26_a_country_outside_the_list_is_403_geo_blocked() {
    let (h, _db) = start().await;
    let r = from(&h, "/geo/eu/report", Some(US)).await;
    assert_geo_blocked(&r, 403, "US".into());
    assert_eq!(r.json()["title"], "Forbidden");
    assert_eq!(r.header("link"), None);
    let r = from(&h, "/geo/store/cart", Some(KP)).await;
    assert_geo_blocked(&r, 403, "KP".into());
    let r = from(&h, "/geo/store/cart", Some(US)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn row26_an_unknown_address_follows_unknown_country() {
    let (h, _db) = start().await;
    // 127.0.0.1 itself, and an address the database does not hold.
    for xff in [None, Some("10.1.2.3")] {
        // An allow list refuses it by default …
        let r = from(&h, "/geo/eu/report", xff).await;
        assert_geo_blocked(&r, 403, Value::Null);
        // … a deny list lets it through.
        let r = from(&h, "/geo/store/cart", xff).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

#[tokio::test]
async fn row26_geo_status_451_names_who_blocks_it() {
    let (h, _db) = start().await;
    let r = h.get("/geo/video/film", &[("X-Forwarded-For", DE)]).await;
    assert_geo_blocked(&r, 451, "DE".into());
    assert_eq!(r.json()["title"], "Unavailable for legal reasons");
    // RFC 7725 §3.
    assert_eq!(
        r.header("link"),
        Some("<https://rights.example/licence>; rel=\"blocked-by\"")
    );
    let r = h.get("/geo/video/film", &[("X-Forwarded-For", US)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn row26_the_country_is_the_trusted_client_address() {
    let (h, _db) = start().await;
    // The proxy (127.0.0.1, trusted) appended the client it saw: the rightmost entry that is
    // not a trusted proxy decides. A client cannot pick its country by sending its own
    // X-Forwarded-For: what it sent stands left of what the proxy appended.
    let r = from(&h, "/geo/eu/report", Some(&format!("{DE}, {US}"))).await;
    assert_geo_blocked(&r, 403, "US".into());
    let r = from(&h, "/geo/eu/report", Some(&format!("{US}, {DE}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The audit record names the client address, the reason and the country; the metrics
    // count the reason by route, never the address.
    let r = from(&h, "/geo/eu/report", Some(US)).await;
    assert_eq!(r.status, 403);
    let id = r.header("x-request-id").unwrap().to_owned();
    let mut metrics = String::new();
    h.gw.observer.metrics.render(&mut metrics);
    assert!(
        metrics.contains(
            "gatehouse_decisions_total{route=\"geo-eu\",status=\"403\",reason=\"geo_blocked\"} 2\n"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains(US), "{metrics}");
    h.gw.shutdown().await;
    let rows =
        h.gw.store
            .query_audit(gatehouse_store::AuditQuery {
                limit: 1000,
                ..gatehouse_store::AuditQuery::default()
            })
            .await
            .unwrap();
    let rec = &rows
        .iter()
        .find(|e| e.record.request_id == id)
        .expect("no audit record")
        .record;
    assert_eq!(rec.client_ip.as_deref(), Some(US));
    assert_eq!(rec.error.as_deref(), Some("geo_blocked"));
    assert_eq!(rec.status, 403);
    assert_eq!(rec.detail, "client country `US` not allowed on this route");
}

#[tokio::test]
async fn row26_a_replaced_database_is_picked_up_without_a_reload() {
    let (h, db) = start().await;
    let r = from(&h, "/geo/eu/report", Some(US)).await;
    assert_geo_blocked(&r, 403, "US".into());
    // The United States' range now maps to Germany.
    db.replace(&[("198.51.100.0/24", "DE"), ("203.0.113.0/24", "DE")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = from(&h, "/geo/eu/report", Some(US)).await;
        if r.status == 200 {
            break;
        }
        assert_geo_blocked(&r, 403, "US".into());
        assert!(
            Instant::now() < deadline,
            "the new database was never loaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A broken replacement keeps the database in force.
    std::fs::write(&db.path, b"garbage").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = from(&h, "/geo/eu/report", Some(US)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
