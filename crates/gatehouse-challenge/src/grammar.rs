//! The RFC 9110 field grammar every header parser and writer of the workspace shares: tokens
//! (§5.6.2), token68 (§11.2) and quoted-strings (§5.6.4).
//!
//! ```text
//! token         = 1*tchar
//! tchar         = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
//!                 "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
//! token68       = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
//! qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
//! quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text )
//! obs-text      = %x80-FF
//! ```

/// `tchar` (RFC 9110 §5.6.2).
#[inline]
pub const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// `token = 1*tchar` (RFC 9110 §5.6.2). Methods (§9.1) and field names (§5.1) are tokens.
#[inline]
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// The characters of a token68 before its `=` padding, as a table: bearer tokens run to
/// hundreds of bytes, and one lookup per byte beats the chain of range checks.
static TOKEN68_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        // `b < 256`: the cast keeps every bit.
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    t
};

/// A character of a token68 before its `=` padding (RFC 9110 §11.2; RFC 6750's b64token).
#[inline]
pub fn is_token68_char(b: u8) -> bool {
    TOKEN68_CHARS[usize::from(b)]
}

/// `token68`: at least one token68 character, then only `=` padding.
#[inline]
pub fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(is_token68_char)
}

/// `qdtext` (RFC 9110 §5.6.4); bytes ≥ 0x80 are obs-text.
#[inline]
pub const fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

/// What may follow the backslash of a `quoted-pair` (RFC 9110 §5.6.4): HTAB, SP, VCHAR or
/// obs-text.
#[inline]
pub const fn is_quoted_pair_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)
}

/// Appends `value` as a quoted-string (RFC 9110 §5.6.4): `"` and `\` escaped, everything else
/// as is.
pub fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// `value` as a quoted-string of its own (RFC 9110 §5.6.4), see [`push_quoted`].
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    push_quoted(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token("GET"));
        assert!(is_token("X-Api-Key"));
        assert!(is_token("!#$%&'*+-.^_`|~09azAZ"));
        for bad in ["", "a b", "a,b", "a\"b", "a/b", "é", "a=b", "(a)"] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn token68() {
        assert!(is_token68("abc-._~+/=="));
        assert!(!is_token68("=="));
        assert!(!is_token68("a=b"));
        assert!(!is_token68("a b"));
    }

    #[test]
    fn quoted_string_characters() {
        assert!(is_qdtext(b'a') && is_qdtext(b' ') && is_qdtext(b'\t') && is_qdtext(0xe4));
        assert!(!is_qdtext(b'"') && !is_qdtext(b'\\') && !is_qdtext(0x7f) && !is_qdtext(b'\n'));
        assert!(is_quoted_pair_char(b'"') && is_quoted_pair_char(b'\\'));
        assert!(!is_quoted_pair_char(b'\n') && !is_quoted_pair_char(0x7f));
    }

    #[test]
    fn quoting_escapes_quote_and_backslash_only() {
        let mut s = String::new();
        push_quoted(&mut s, "a\"b\\c é");
        assert_eq!(s, "\"a\\\"b\\\\c é\"");
    }
}
