//! Integration tests against real PostgreSQL and RabbitMQ. One binary: every module is a group.

mod admin;
mod bad_input;
mod browser;
mod console;
mod helpers;
mod limits;
mod periods;
mod proxy;
mod replay;
mod saft;
mod webhooks;
mod worker;
