//! Integration tests against real PostgreSQL and RabbitMQ. One binary: every module is a group.

mod bad_input;
mod helpers;
mod periods;
mod proxy;
mod saft;
mod webhooks;
mod worker;
