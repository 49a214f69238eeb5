//! `gatehouse probe`: runs the auditor of `gatehouse-probe` against another API.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use gatehouse_probe::spec::{self, SpecErrors};
use gatehouse_probe::{Format, Limits, Options, Progress, Target};

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The probe file (TOML): target, personas, endpoints.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Endpoints from an OpenAPI 3 document (JSON or YAML); replaces the probe file's endpoints.
    #[arg(long)]
    pub openapi: Option<PathBuf>,
    /// The API to probe (`http://host:port[/base]`); overrides the file's `target`.
    #[arg(long)]
    pub target: Option<String>,
    /// Report format.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "junit", "sarif", "html"])]
    pub format: String,
    /// Write the report to a file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Also send many failed attempts to check throttling (`no-throttling`).
    #[arg(long)]
    pub aggressive: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Requests per second.
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// The most requests the run may send.
    #[arg(long, default_value_t = 2000)]
    pub max_requests: usize,
    /// Timeout of each request, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// No progress lines on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Exit status 2: the spec is bad (or the target unreachable).
const BAD_SPEC: u8 = 2;

fn spec_errors(name: &str, e: &SpecErrors) -> ExitCode {
    for err in &e.0 {
        eprintln!("error: {name}: {err}");
    }
    eprintln!("error: `{name}` has {} error(s)", e.0.len());
    ExitCode::from(BAD_SPEC)
}

fn read(p: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(p)
        .map_err(|e| eprintln!("error: cannot read `{}`: {e}", p.display()))
        .ok()
}

pub async fn probe(a: ProbeArgs) -> anyhow::Result<ExitCode> {
    let format: Format = a.format.parse().map_err(anyhow::Error::msg)?;
    let mut spec = match &a.spec {
        Some(p) => {
            let Some(text) = read(p) else {
                return Ok(ExitCode::from(BAD_SPEC));
            };
            match spec::parse(&text) {
                Ok(s) => s,
                Err(e) => return Ok(spec_errors(&p.display().to_string(), &e)),
            }
        }
        None => spec::Spec::default(),
    };
    if let Some(p) = &a.openapi {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read `{}`", p.display()))?;
        match gatehouse_probe::openapi::endpoints(&text, &spec.personas) {
            Ok(eps) => spec.endpoints = eps,
            Err(e) => return Ok(spec_errors(&p.display().to_string(), &e)),
        }
    }
    let target = match &a.target {
        Some(t) => match Target::parse(t) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --target: {e}");
                return Ok(ExitCode::from(BAD_SPEC));
            }
        },
        None => match spec.target.clone() {
            Some(t) => t,
            None => {
                eprintln!(
                    "error: no target: give `--target URL` or `target = \"…\"` in the probe file"
                );
                return Ok(ExitCode::from(BAD_SPEC));
            }
        },
    };
    if spec.endpoints.is_empty() {
        eprintln!("error: no endpoints: add `[[endpoint]]` tables or give `--openapi FILE`");
        return Ok(ExitCode::from(BAD_SPEC));
    }
    if !(a.timeout.is_finite() && a.timeout > 0.0) || a.rate == 0 || a.concurrency == 0 {
        anyhow::bail!("--timeout, --rate and --concurrency must be positive");
    }
    let limits = Limits {
        concurrency: a.concurrency,
        rate: a.rate,
        max_requests: a.max_requests,
        timeout: Duration::from_secs_f64(a.timeout),
    };
    let tty = std::io::stderr().is_terminal();
    let progress: Option<gatehouse_probe::run::ProgressFn> = (!a.quiet).then(|| {
        Arc::new(move |p: &Progress| {
            let status = p
                .status
                .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            let line = format!(
                "[{}/{}] {} {} as {} → {status}",
                p.done, p.total, p.method, p.path, p.persona
            );
            let mut err = std::io::stderr().lock();
            // On a terminal, one line rewritten in place; otherwise plain lines for logs.
            let _ = if tty {
                write!(err, "\r\x1b[2K{line}")
            } else {
                writeln!(err, "{line}")
            };
            let _ = err.flush();
        }) as gatehouse_probe::run::ProgressFn
    });
    let mut report = gatehouse_probe::run(
        &spec,
        target,
        Options {
            limits,
            aggressive: a.aggressive,
            progress,
        },
    )
    .await;
    if tty && !a.quiet {
        eprintln!();
    }
    report.spec_uri = a
        .spec
        .as_ref()
        .or(a.openapi.as_ref())
        .map(|p| p.display().to_string());
    let text = report.render(format);
    match &a.output {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("cannot write `{}`", p.display()))?
        }
        None => print!("{text}"),
    }
    if report.unreachable() {
        eprintln!(
            "error: the target answered no request: {}",
            report.failures.first().map_or("", |f| f.error.as_str())
        );
        return Ok(ExitCode::from(BAD_SPEC));
    }
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
