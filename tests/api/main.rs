//! Integration tests against real PostgreSQL and RabbitMQ. One binary: every module is a group.

mod admin;
mod admin_edge;
mod bad_input;
mod browser;
mod cli;
mod console;
mod edge;
mod helpers;
mod limits;
mod logs;
mod metrics;
mod outages;
mod periods;
mod proxy;
mod replay;
mod saft;
mod setup;
mod signed_bytes;
mod webhooks;
mod worker;
