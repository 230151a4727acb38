//! mimi-client: see the crate's issue; not built yet.
