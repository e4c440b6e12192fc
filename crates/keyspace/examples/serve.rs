//! Serves a bare keyspace over RESP (no persistence): for redis-benchmark
//! and redis-cli comparisons of the keyspace alone.
//!
//! `cargo run --release -p cairn-keyspace --example serve -- 6390`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cairn_keyspace::Keyspace;
use cairn_resp::{ServerConfig, run};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(6390);
    let ks = Keyspace::builder()
        .config_param("port", &port.to_string())
        .build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("Ready to accept connections on {}", listener.local_addr()?);
    let expiring = ks.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            expiring.active_expire_cycle(Duration::from_millis(25));
        }
    });
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    run(listener, Arc::new(ks), ServerConfig::default(), shutdown).await
}
