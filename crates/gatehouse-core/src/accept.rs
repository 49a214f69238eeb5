//! `Accept` negotiation for error bodies: does the client prefer HTML (a browser)?
//!
//! RFC 9110 §12.5.1. `text/html` must be named explicitly (a bare `*/*` is not a browser)
//! and rank strictly above `application/json` / `application/problem+json`, q-values
//! honoured.

/// True when `Accept` prefers `text/html` over JSON.
pub fn prefers_html(accept: &str) -> bool {
    let mut html: Option<f32> = None;
    let mut json: f32 = 0.0;
    let mut any: f32 = 0.0;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let mut q = 1.0f32;
        for p in parts {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                q = v
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            }
        }
        if media.eq_ignore_ascii_case("text/html")
            || media.eq_ignore_ascii_case("application/xhtml+xml")
        {
            html = Some(html.map_or(q, |h: f32| h.max(q)));
        } else if media.eq_ignore_ascii_case("application/json")
            || media.eq_ignore_ascii_case("application/problem+json")
        {
            json = json.max(q);
        } else if media == "*/*" || media.eq_ignore_ascii_case("application/*") {
            any = any.max(q);
        }
    }
    match html {
        Some(h) if h > 0.0 => h > json && (json > 0.0 || h >= any),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::prefers_html;

    #[test]
    fn browsers_prefer_html() {
        assert!(prefers_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
        ));
        assert!(prefers_html("text/html"));
    }

    #[test]
    fn api_clients_do_not() {
        assert!(!prefers_html("*/*"));
        assert!(!prefers_html("application/json"));
        assert!(!prefers_html("application/json, text/html;q=0.5"));
        assert!(!prefers_html("text/html;q=0.5, application/problem+json"));
        assert!(!prefers_html("text/html;q=0"));
        assert!(!prefers_html(""));
        assert!(!prefers_html("text/html;q=0.2, */*"));
    }
}
