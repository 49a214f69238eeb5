//! The audit trail (design §6): one record per refusal, per allowed request when
//! `[audit] log_allowed` is on, and per alert event. A record never holds a secret: the
//! gateway builds it from the decision, never from a credential or a query string.

/// What an audit record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// One answered request.
    Request,
    /// An alert event (a 401/403 spike or an IP burst); `status` is 0.
    Alert,
}

impl AuditKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Alert => "alert",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "request" => Some(Self::Request),
            "alert" => Some(Self::Alert),
            _ => None,
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Unix seconds.
    pub time: i64,
    pub kind: AuditKind,
    pub request_id: String,
    /// Route name, `default` for `[defaults]`, `auth/login` etc. for the token service.
    pub route: String,
    pub method: String,
    /// Normalized path, never the query string.
    pub path: String,
    pub client_ip: Option<String>,
    /// The proven subject, when verification succeeded.
    pub principal: Option<String>,
    /// Scheme of the presented credential (`bearer`, `basic`, …), when one was presented.
    pub scheme: Option<String>,
    /// The status sent (404 for a hidden refusal); 0 for alert events.
    pub status: u16,
    /// The true `error` code (a hidden 404 keeps the refusal's own code); `None` for
    /// allowed requests.
    pub error: Option<String>,
    /// Row 20 turned this refusal into a 404.
    pub hidden: bool,
    pub detail: String,
}

/// A stored record and its sequence number (increasing; the cursor of `audit tail --follow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub record: AuditRecord,
}

/// Filters of [`Store::query_audit`](crate::Store::query_audit); `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Records at or after this unix second.
    pub since: Option<i64>,
    /// Only records with a sequence number above this one.
    pub after_seq: Option<i64>,
    pub status: Option<u16>,
    /// The `error` code.
    pub reason: Option<String>,
    /// The principal.
    pub user: Option<String>,
    /// Records before this unix second.
    pub until: Option<i64>,
    /// Only records with a sequence number below this one (the cursor of paging backwards).
    pub before_seq: Option<i64>,
    /// The route name.
    pub route: Option<String>,
    /// The client address, as recorded.
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub kind: Option<AuditKind>,
    /// At most this many records: the newest ones, returned oldest first — or with
    /// `oldest_first`, the oldest ones (an export walking forwards with `after_seq`).
    pub limit: u32,
    pub oldest_first: bool,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            since: None,
            after_seq: None,
            status: None,
            reason: None,
            user: None,
            until: None,
            before_seq: None,
            route: None,
            client_ip: None,
            request_id: None,
            kind: None,
            limit: 100,
            oldest_first: false,
        }
    }
}

/// One per-minute rollup of answers (the admin console's charts): how many answers of
/// `status` and `reason` route `route` gave in the minute starting at `minute`, summed over
/// the nodes that reported it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatRow {
    /// Unix seconds at the start of the minute (a multiple of 60).
    pub minute: i64,
    pub route: String,
    pub status: u16,
    /// The `error` code of a refusal, or the pass label (`allowed`, `public`, …).
    pub reason: String,
    pub count: u64,
}

/// Filters of [`Store::query_stats`](crate::Store::query_stats).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsQuery {
    /// Minutes at or after this unix second.
    pub since: i64,
    /// Minutes before this unix second.
    pub until: i64,
    pub route: Option<String>,
}
