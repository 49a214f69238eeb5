//! Integration tests that drive the real `gatehouse` binary as a new user would: every
//! command of the README, over real processes, files and sockets on 127.0.0.1.

#[path = "cli/support.rs"]
mod support;

#[path = "cli/admin.rs"]
mod admin;
#[cfg(unix)] // SIGTERM via kill(1)
#[path = "cli/audit.rs"]
mod audit;
#[path = "cli/check.rs"]
mod check;
#[cfg(unix)] // SIGTERM via kill(1), curl
#[path = "cli/copy.rs"]
mod copy;
#[path = "cli/demo.rs"]
mod demo;
#[cfg(unix)] // SIGHUP via kill(1)
#[path = "cli/digest.rs"]
mod digest;
#[path = "cli/explain.rs"]
mod explain;
#[path = "cli/identity.rs"]
mod identity;
#[path = "cli/migrate.rs"]
mod migrate;
#[path = "cli/mock.rs"]
mod mock;
#[path = "cli/probe.rs"]
mod probe;
#[path = "cli/pyjwt.rs"]
mod pyjwt;
#[cfg(unix)] // signals (SIGHUP, SIGTERM) via kill(1)
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/users.rs"]
mod users;
