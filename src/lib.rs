//! shopbridge keeps a webshop and its accounting in step.
//!
//! ```text
//! shop ─POST /webhooks/{id}─▶ http::webhooks   verify (signature), cached connection (cache)
//!                                │ publish with confirm (queue::publisher) ─▶ 202
//!                                ▼
//!                   RabbitMQ quorum queue "shopbridge.events" (queue::topology)
//!                                ▼
//!        worker: one transaction per batch: inbox, raw event, channel adapter (channels)
//!        → posting engine (posting, pure) → vouchers (db) → commit → ack
//! ```
//! Operators drive it through the CLI (`cli`, `commands`).

pub mod app;
pub mod bench;
pub mod cache;
pub mod channel;
pub mod channels;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connections;
pub mod console;
pub mod crypto;
pub mod db;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod posting;
pub mod queue;
pub mod saft;
pub mod samples;
pub mod shutdown;
pub mod signature;
pub mod telemetry;
pub mod worker;
