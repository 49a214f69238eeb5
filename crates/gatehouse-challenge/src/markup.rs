//! Escaping text for HTML and XML (the gateway's browser pages, the probe's HTML, JUnit and
//! SARIF reports): one escaper, safe in element content and in quoted attribute values of
//! both.

/// Escapes `s` for HTML or XML element content and (single- or double-) quoted attribute
/// values. Control characters that XML 1.0 forbids even escaped become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // `&apos;` is not HTML 4; the numeric reference is both HTML and XML.
            '\'' => out.push_str("&#39;"),
            c if c < '\u{20}' && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_quotes_and_control_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'\u{1}\n"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\u{FFFD}\n"
        );
        assert_eq!(escape("josé"), "josé");
    }
}
