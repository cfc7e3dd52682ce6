//! Integration tests against real PostgreSQL and RabbitMQ. One binary: every module is a group.

mod admin;
mod helpers;
mod proxy;
mod replay;
mod webhooks;
mod worker;
