//! `gatehouse probe`: audits any HTTP API for correct 401/403 behaviour and broken access
//! control (design §7). A probe file (or an OpenAPI 3 document) names the endpoints and the
//! personas that may pass each; the probe asks every endpoint as every persona, plus
//! anonymous, garbage, wrong-password, `alg: none` and tampered credentials derived from the
//! personas, and a CORS preflight, then judges each answer against RFC 9110 §11/§15.5,
//! RFC 6750 and RFC 8725. See `docs/probe.md` for every check.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = gatehouse_probe::spec::parse(&std::fs::read_to_string("probe.toml")?)?;
//! let target = spec.target.clone().ok_or("no target")?;
//! let report = gatehouse_probe::run(&spec, target, gatehouse_probe::Options::default()).await;
//! print!("{}", report.render(gatehouse_probe::Format::Table));
//! # Ok(()) }
//! ```

pub mod challenge;
pub mod checks;
pub mod client;
pub mod digest;
pub mod jwt;
pub mod leaks;
pub mod openapi;
pub mod report;
pub mod run;
pub mod spec;

pub use checks::{Check, Severity};
pub use client::Limits;
pub use report::{EndpointResult, Finding, Format, Outcome, Report};
pub use run::{Options, Progress, run};
pub use spec::{Endpoint, Persona, Spec, Target};
