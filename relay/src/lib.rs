//! mimi-relay: see the crate's issue; not built yet.
