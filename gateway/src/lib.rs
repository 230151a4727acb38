//! mimi-gateway: see the crate's issue; not built yet.
