//! Where each stub starts and ends in a stub file, so errors can name lines.
//!
//! serde_json reports positions only for the value it is parsing; a stub file is parsed
//! once as a whole (syntax errors), then each stub again from its own slice. This finds the
//! slices: the elements of a top-level array, of a top-level `"mappings"` array, or the one
//! top-level object. The text is already known to be valid JSON (RFC 8259).

/// A byte range of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// 1-based line of byte `offset`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The stub slices of valid JSON `text`.
pub fn element_spans(text: &str) -> Result<Vec<Span>, &'static str> {
    let b = text.as_bytes();
    let start = skip_ws(b, 0);
    match b.get(start) {
        Some(b'[') => Ok(array_elements(b, start)),
        Some(b'{') => {
            if let Some(arr) = mappings_array(b, start) {
                return Ok(array_elements(b, arr));
            }
            Ok(vec![Span {
                start,
                end: skip_value(b, start),
            }])
        }
        _ => Err("a stub file holds a stub object, an array of stubs, or `{\"mappings\": [...]}`"),
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `i` (its opening quote).
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// End (exclusive) of the value starting at `i`.
fn skip_value(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => skip_string(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            j
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            j
        }
    }
}

/// The elements of the array whose `[` is at `open`.
fn array_elements(b: &[u8], open: usize) -> Vec<Span> {
    let mut out = Vec::new();
    let mut i = skip_ws(b, open + 1);
    while let Some(&c) = b.get(i) {
        if c == b']' {
            break;
        }
        let end = skip_value(b, i);
        out.push(Span { start: i, end });
        i = skip_ws(b, end);
        if b.get(i) == Some(&b',') {
            i = skip_ws(b, i + 1);
        }
    }
    out
}

/// The position of the `[` of a top-level `"mappings"` member of the object at `open`.
fn mappings_array(b: &[u8], open: usize) -> Option<usize> {
    let mut i = skip_ws(b, open + 1);
    while b.get(i) == Some(&b'"') {
        let key_end = skip_string(b, i);
        let key: Result<String, _> = serde_json::from_slice(b.get(i..key_end)?);
        let colon = skip_ws(b, key_end);
        let value = skip_ws(b, colon + 1);
        if key.ok().as_deref() == Some("mappings") && b.get(value) == Some(&b'[') {
            return Some(value);
        }
        i = skip_ws(b, skip_value(b, value));
        if b.get(i) == Some(&b',') {
            i = skip_ws(b, i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn slices(text: &str) -> Vec<&str> {
        element_spans(text)
            .unwrap()
            .iter()
            .map(|s| &text[s.start..s.end])
            .collect()
    }

    #[test]
    fn finds_array_elements_mappings_and_single_objects() {
        assert_eq!(
            slices(r#" [ {"a": "]}"}, {"b": [1, {"c": "\"{"}]} ] "#),
            [r#"{"a": "]}"}"#, r#"{"b": [1, {"c": "\"{"}]}"#]
        );
        assert_eq!(
            slices(r#"{"meta": {"mappings": 1}, "mappings": [{"x": 1},{"y":2}]}"#),
            [r#"{"x": 1}"#, r#"{"y":2}"#]
        );
        assert_eq!(slices("\n{\"url\": \"/\"}\n"), ["{\"url\": \"/\"}"]);
        assert_eq!(slices("[]"), Vec::<&str>::new());
        assert!(element_spans("42").is_err());
    }

    #[test]
    fn lines_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }

    proptest! {
        /// Any array of JSON values splits back into exactly its elements.
        #[test]
        fn spans_round_trip(values in prop::collection::vec(
            prop_oneof![
                any::<i64>().prop_map(serde_json::Value::from),
                "[a-z\"\\\\\\[\\]{}]{0,8}".prop_map(serde_json::Value::from),
                prop::collection::vec("[a-z\"\\]]{0,4}", 0..3).prop_map(|v| serde_json::json!({"k": v})),
            ],
            0..6,
        )) {
            let text = serde_json::to_string_pretty(&values).unwrap();
            let back: Vec<serde_json::Value> = slices(&text)
                .iter()
                .map(|s| serde_json::from_str(s).unwrap())
                .collect();
            prop_assert_eq!(back, values);
        }
    }
}
