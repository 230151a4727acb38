//! The testbed: a whole private-discovery world in one process, for the demo,
//! the end-to-end and privacy tests, and benchmarks.
//!
//! # Layout
//!
//! - [`world`]: starts DNS, two providers' gateways and the relay on distinct
//!   loopback addresses (port 0), each behind a recording tap.
//! - [`samples`]: the providers, people and DNS records of that world.
//! - [`recorder`]: what each party received and sent, and the search for
//!   leaked identifiers in every encoding.
//! - [`report`]: the demo's results and "who saw what" tables.
//! - [`hostile`]: a relay that substitutes keys or refuses tunnels, and a
//!   gateway that tries to tag clients, for the attack tests.
//! - [`one_relay`]: a relay with one resource per gateway, as found in the wild.
//! - [`resolver`]: the validating resolver behind the DNS gateway.
//! - [`pki`]: the test CA; [`dns`]: the authoritative DNS server;
//!   [`doh`]: a DNS-over-HTTPS front for it.
//! - [`procs`]: the real binaries as processes; [`bench`](mod@bench): the load generator.

pub mod bench;
pub mod bench_cost;
pub mod bench_stores;
pub mod bench_tokens;
pub mod credentials;
pub mod dns;
pub mod doh;
pub mod engines;
pub mod hostile;
pub mod one_relay;
pub mod pki;
pub mod procs;
pub mod recorder;
pub mod report;
pub mod resolver;
pub mod samples;
pub mod world;

pub use world::World;
