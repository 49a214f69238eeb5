//! `[pages] dir`: the operator's HTML templates (minijinja, autoescaped as HTML) in place of
//! the built-in pages: `sign-in.html`, `403.html`, `404.html`, `429.html` and `error.html`,
//! each optional. Every `.html` file of the directory is loaded, so templates may `extends`
//! or `include` a shared layout. A template gets the problem body's members (`title`,
//! `detail`, `error`, `status`, `request_id`, `required_roles`, …) as variables, plus
//! `return_to` (the same-origin URL a sign-in form returns to) and `problem` (all members).
//!
//! A template that fails to parse is an error at load with its file and line; one that fails
//! while rendering falls back to the built-in page and logs why. `gatehouse check` renders
//! every template once with sample data ([`Branded::check`]).

use std::path::Path;

use gatehouse_core::config::PagesConfig;
use gatehouse_core::render::{PageKind, Pages};
use minijinja::Environment;
use serde_json::{Map, Value, json};

/// The template of each page kind.
pub const FILES: [(PageKind, &str); 5] = [
    (PageKind::SignIn, "sign-in.html"),
    (PageKind::Forbidden, "403.html"),
    (PageKind::NotFound, "404.html"),
    (PageKind::TooMany, "429.html"),
    (PageKind::Error, "error.html"),
];

/// The loaded templates.
pub struct Branded {
    env: Environment<'static>,
}

impl std::fmt::Debug for Branded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Branded").finish_non_exhaustive()
    }
}

/// `file:line: message` of a template error.
fn located(dir: &Path, e: &minijinja::Error) -> String {
    let file = e.name().unwrap_or("?");
    let at = e.line().map_or_else(String::new, |l| format!(":{l}"));
    let what = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_owned);
    format!("[pages] `{}{at}`: {what}", dir.join(file).display())
}

impl Branded {
    /// Loads every `.html` file of the directory; every error with its file and line.
    pub fn load(cfg: &PagesConfig) -> Result<Self, Vec<String>> {
        let dir = &cfg.dir;
        let entries = std::fs::read_dir(dir)
            .map_err(|e| vec![format!("[pages] dir `{}`: {e}", dir.display())])?;
        let mut env = Environment::new();
        // Autoescaping by extension is minijinja's default: `.html` templates escape HTML.
        let mut errors = Vec::new();
        let mut names = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".html") {
                continue;
            }
            match std::fs::read_to_string(entry.path()) {
                Ok(source) => match env.add_template_owned(name.clone(), source) {
                    Ok(()) => names.push(name),
                    Err(e) => errors.push(located(dir, &e)),
                },
                Err(e) => errors.push(format!("[pages] `{}`: {e}", entry.path().display())),
            }
        }
        if errors.is_empty() && !FILES.iter().any(|(_, f)| names.iter().any(|n| n == f)) {
            errors.push(format!(
                "[pages] dir `{}` has none of {}",
                dir.display(),
                FILES.map(|(_, f)| format!("`{f}`")).join(", ")
            ));
        }
        if !errors.is_empty() {
            errors.sort();
            return Err(errors);
        }
        Ok(Self { env })
    }

    fn render(
        &self,
        file: &str,
        members: &Map<String, Value>,
        return_to: &str,
    ) -> Option<Result<String, minijinja::Error>> {
        let template = self.env.get_template(file).ok()?;
        let mut data = members.clone();
        data.insert("return_to".into(), Value::String(return_to.to_owned()));
        data.insert("problem".into(), Value::Object(members.clone()));
        Some(template.render(minijinja::Value::from(minijinja::value::Serde(&data))))
    }

    /// Renders every template present once with sample data (`gatehouse check`): each
    /// error with its file and line.
    pub fn check(&self, dir: &Path) -> Vec<String> {
        let mut errors = Vec::new();
        for (kind, file) in FILES {
            if let Some(Err(e)) = self.render(file, &sample(kind), "/app/orders") {
                errors.push(located(dir, &e));
            }
        }
        errors
    }
}

impl Pages for Branded {
    fn page(
        &self,
        kind: PageKind,
        members: &Map<String, Value>,
        return_to: &str,
    ) -> Option<String> {
        let file = FILES.iter().find(|(k, _)| *k == kind)?.1;
        match self.render(file, members, return_to)? {
            Ok(page) => Some(page),
            Err(e) => {
                tracing::error!(template = file, error = %e, "branded page failed; the built-in page is sent");
                None
            }
        }
    }
}

/// Members like those a refusal of `kind` carries.
fn sample(kind: PageKind) -> Map<String, Value> {
    let (status, error, title, extra) = match kind {
        PageKind::SignIn => (
            401,
            "missing_credentials",
            "Authentication required",
            json!({"accepted_schemes": ["bearer", "session"]}),
        ),
        PageKind::Forbidden => (
            403,
            "insufficient_role",
            "Forbidden",
            json!({"required_roles": ["admin"]}),
        ),
        PageKind::NotFound => (404, "not_found", "Not found", json!({})),
        PageKind::TooMany => (
            429,
            "too_many_attempts",
            "Too many attempts",
            json!({"retry_after": 60}),
        ),
        PageKind::Error => (
            503,
            "auth_unavailable",
            "Service unavailable",
            json!({"retry_after": 5}),
        ),
    };
    let mut m = Map::new();
    m.insert(
        "type".into(),
        json!(format!("urn:gatehouse:problem:{error}")),
    );
    m.insert("title".into(), json!(title));
    m.insert("status".into(), json!(status));
    m.insert("detail".into(), json!("Sample detail."));
    m.insert("error".into(), json!(error));
    m.insert("message".into(), json!("Sample detail."));
    m.insert("timestamp".into(), json!("2026-01-01T00:00:00Z"));
    m.insert("request_id".into(), json!("sample-request-id"));
    if let Value::Object(extra) = extra {
        m.extend(extra);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &str)]) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "gatehouse-pages-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(crate::random::random_bytes::<8>())
        ));
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        for (n, t) in files {
            std::fs::write(d.join(n), t).unwrap_or_else(|e| panic!("{e}"));
        }
        d
    }

    fn cfg(d: &Path) -> PagesConfig {
        PagesConfig {
            dir: d.to_owned(),
            line: 1,
        }
    }

    #[test]
    fn a_template_gets_the_problem_members_escaped() {
        let d = dir(&[
            ("base.html", "<main>{% block body %}{% endblock %}</main>"),
            (
                "403.html",
                "{% extends \"base.html\" %}{% block body %}<h1>{{ title }}</h1><p>{{ detail }}</p>{% for r in required_roles %}<b>{{ r }}</b>{% endfor %}<i>{{ request_id }}</i>{% endblock %}",
            ),
        ]);
        let b = Branded::load(&cfg(&d)).unwrap_or_else(|e| panic!("{e:?}"));
        let mut m = sample(PageKind::Forbidden);
        m.insert("detail".into(), json!("<script>x</script>"));
        let page = b.page(PageKind::Forbidden, &m, "/").unwrap_or_default();
        assert_eq!(
            page,
            "<main><h1>Forbidden</h1><p>&lt;script&gt;x&lt;&#x2f;script&gt;</p><b>admin</b><i>sample-request-id</i></main>"
        );
        // No template for the kind: the built-in page.
        assert_eq!(b.page(PageKind::SignIn, &m, "/"), None);
        assert!(b.check(&d).is_empty());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let d = dir(&[("403.html", "<h1>{{ title }}</h1>\n<p>{% if detail %}</p>\n")]);
        let e = Branded::load(&cfg(&d)).expect_err("loaded");
        assert!(
            e[0].starts_with(&format!("[pages] `{}:", d.join("403.html").display())),
            "{e:?}"
        );
        assert!(
            e[0].contains(".html:2`") || e[0].contains(".html:3`"),
            "{e:?}"
        );
        // Renders only at check time: an unknown filter.
        std::fs::write(
            d.join("403.html"),
            "<h1>{{ title }}</h1>\n<p>{{ detail | shout }}</p>\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        match Branded::load(&cfg(&d)) {
            Ok(b) => {
                let e = b.check(&d);
                assert_eq!(e.len(), 1, "{e:?}");
                assert!(e[0].contains("403.html:2`"), "{e:?}");
            }
            Err(e) => assert!(e[0].contains("403.html:2`"), "{e:?}"),
        }
        std::fs::remove_file(d.join("403.html")).unwrap_or_else(|e| panic!("{e}"));
        let e = Branded::load(&cfg(&d)).expect_err("empty dir loaded");
        assert!(e[0].contains("has none of `sign-in.html`"), "{e:?}");
        let _ = std::fs::remove_dir_all(d);
    }
}
