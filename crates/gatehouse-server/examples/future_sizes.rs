//! Sizes of the futures every request allocates and moves (finding 11 in docs/benchmarks.md):
//! the proxied request's (`edge::proxy_request`, which the server boxes once per request),
//! the parts it awaits — the decision (`Gateway::decide`) and the upstream exchange
//! (`Upstream::forward`) — plus the forward-auth handler's.
//!
//! ```sh
//! cargo run --release -p gatehouse-server --example future_sizes
//! ```
//! Futures are built and dropped, never polled: nothing is sent anywhere.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use gatehouse_server::gateway::RequestView;
use http::{HeaderMap, Request};

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"

[upstream]
url = "http://127.0.0.1:9"

[store]
url = "sqlite::memory:"

[[route]]
name = "api"
path = "/api/**"
auth = ["bearer"]
"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    gatehouse_server::install_crypto();
    let (config, _warnings) = gatehouse_core::config::parse(CONFIG)?;
    let gw = gatehouse_server::build(config).await?;
    let rt = gw.runtime();
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000));
    let headers = HeaderMap::new();
    let view = RequestView {
        method: "GET",
        path: "/api/x",
        query: None,
        headers: &headers,
        client_ip: peer.ip(),
        now: gatehouse_server::clock::now(),
        target: "/api/x",
    };
    let proxied =
        gatehouse_server::edge::proxy_request(Arc::clone(&gw), peer, Request::new(Body::empty()));
    println!(
        "edge::proxy_request   {:5} bytes",
        std::mem::size_of_val(&proxied)
    );
    drop(proxied);
    let decide = gw.decide(&rt, &view, None);
    println!(
        "Gateway::decide       {:5} bytes",
        std::mem::size_of_val(&decide)
    );
    drop(decide);
    if let Some(up) = &rt.upstream {
        let forward = up.forward(
            Request::new(Body::empty()),
            "/api/x",
            IpAddr::from(Ipv4Addr::LOCALHOST),
            false,
            None,
        );
        println!(
            "Upstream::forward     {:5} bytes",
            std::mem::size_of_val(&forward)
        );
    }
    let fwd_auth = gatehouse_server::edge::forward_auth_handler(
        State(Arc::clone(&gw)),
        ConnectInfo(peer),
        Request::new(Body::empty()),
    );
    println!(
        "forward_auth_handler  {:5} bytes",
        std::mem::size_of_val(&fwd_auth)
    );
    Ok(())
}
