//! The posting engine: canonical events and rules in, balanced vouchers out. Pure: no IO, no
//! async, so every rule of the books can be tested on its own.

pub mod event;
pub mod money;
