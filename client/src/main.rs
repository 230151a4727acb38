//! `mimi-discover`: find a person's accounts on MIMI providers, privately.
//!
//! Exit codes: 0 at least one account found; 1 everything answered, nothing
//! found; 2 bad input (refused before any network traffic); 3 a network or
//! provider failure and nothing found.

mod cli;
mod token_cache;

fn main() -> std::process::ExitCode {
    cli::main()
}
