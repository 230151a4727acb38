//! mimi-gateway
pub mod directory;
pub mod error;
pub mod inner;
pub mod keys;
pub mod metrics;
pub mod replay;
pub mod service;
pub mod tls;
