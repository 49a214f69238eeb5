//! `gatehouse serve`: run the gateway; SIGHUP reloads the config (a config that fails
//! validation keeps the old one running); SIGTERM / Ctrl-C drain and stop.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use gatehouse_server::{Gateway, Runtime, admin_router, bind, build, serve_on_tls, serve_public};

use super::load_config;
use crate::cli::ConfigArg;

pub async fn serve(arg: &ConfigArg) -> anyhow::Result<ExitCode> {
    let cfg = load_config(arg)?;
    let listen = cfg.server.listen;
    let admin = cfg.server.admin_listen;
    let tls = cfg.server.tls.clone();
    let gw = build(cfg).await?;
    let public = bind(listen).await?;
    tracing::info!(addr = %public.local_addr()?, "gatehouse listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(addr) = admin {
        let l = bind(addr).await?;
        tracing::info!(addr = %l.local_addr()?, "admin listening");
        let mut rx = stop_rx.clone();
        let router = admin_router(Arc::clone(&gw));
        tasks.push(tokio::spawn(async move {
            serve_on_tls(l, router, tls.as_ref(), async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        }));
    }
    let mut rx = stop_rx.clone();
    let public_gw = Arc::clone(&gw);
    tasks.push(tokio::spawn(async move {
        serve_public(public, public_gw, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await
    }));
    signals(arg, &gw).await?;
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    for t in tasks {
        if let Err(e) = t.await.context("server task failed").and_then(|r| Ok(r?)) {
            result = Err(e);
        }
    }
    // The servers are down: write every queued audit record before exiting.
    gw.shutdown().await;
    result?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
async fn signals(arg: &ConfigArg, gw: &Arc<Gateway>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
            _ = hup.recv() => {
                reload(arg, gw);
                // The listeners' certificates too (also reloaded when their files change).
                gatehouse_server::tls::reload_all();
            }
        }
    }
}

#[cfg(not(unix))]
async fn signals(_arg: &ConfigArg, _gw: &Arc<Gateway>) -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn reload(arg: &ConfigArg, gw: &Gateway) {
    let cfg = match load_config(arg) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "config reload failed; the old config stays in force");
            return;
        }
    };
    let old = &gw.runtime().config.cluster;
    if cfg.cluster.redis_url != old.redis_url
        || cfg.cluster.key_prefix != old.key_prefix
        || cfg.cluster.timeout != old.timeout
    {
        tracing::warn!("`[cluster]` changed: it takes effect at the next restart");
    }
    match Runtime::new(cfg, &gw.own_keys(), gw.cluster.clone()) {
        Ok(rt) => {
            gw.replace_runtime(rt);
            tracing::info!("config reloaded");
        }
        Err(e) => {
            tracing::error!(error = %e, "config reload failed; the old config stays in force")
        }
    }
}
