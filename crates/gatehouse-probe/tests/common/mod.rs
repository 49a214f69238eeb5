//! What the probe's test targets share: fast limits and the finding sets they compare.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use gatehouse_probe::{Limits, Report};

/// No pacing to speak of, a short timeout.
pub fn fast() -> Limits {
    Limits {
        concurrency: 4,
        rate: 1000,
        max_requests: 2000,
        timeout: Duration::from_secs(2),
    }
}

/// (check, endpoint, persona) for every persona of every finding (a grouped finding
/// contributes one item per persona it was seen for).
pub fn set(r: &Report) -> BTreeSet<(String, String, String)> {
    r.findings
        .iter()
        .flat_map(|f| {
            f.personas()
                .into_iter()
                .map(|p| (f.check.id().to_owned(), f.endpoint.clone(), p.to_owned()))
        })
        .collect()
}

pub fn expect(items: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    items
        .iter()
        .map(|(c, e, p)| ((*c).to_owned(), (*e).to_owned(), (*p).to_owned()))
        .collect()
}
