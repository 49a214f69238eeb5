//! `docs/config.md` documents every key the parser accepts, and nothing else; its examples
//! parse; its complete example uses every key.
//!
//! The key list is not kept by hand: it is read off the parser itself. Every table the
//! parser walks passes through [`Ctx::unknown_keys`](super::Ctx::unknown_keys) with the keys
//! it knows, and in tests that call is recorded ([`super::SEEN`]). Starting from an empty
//! file, each known key is tried as an empty table (`k = {}`) and as an array of one
//! (`k = [{}]`): when the parser then walks a table at that key, it is a section or an
//! inline table, and its own keys are found the same way. A key added to the parser is
//! found here without any list to update — and fails the test until the doc has its line.

use std::collections::BTreeMap;

use super::{SEEN, parse};

/// The doc, as the repository has it.
const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md"));

/// What the parser expects at a key.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Value,
    /// A table (`[section]` or an inline table) with these keys.
    Table(Keys),
    /// An array of tables (`[[section]]`), each with these keys.
    Array(Keys),
}

type Keys = BTreeMap<String, Shape>;

/// `(table path, known keys)` for every table the parser walked in `doc`.
fn walked(doc: &toml::Table) -> Vec<(String, Vec<String>)> {
    SEEN.with_borrow_mut(Vec::clear);
    let _ = parse(&doc.to_string());
    SEEN.with_borrow_mut(std::mem::take)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The keys of the table at `path`, which `place` puts into a document.
fn discover(place: &dyn Fn(toml::Table) -> toml::Table, path: &str) -> Keys {
    let known = walked(&place(toml::Table::new()))
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, keys)| keys)
        .unwrap_or_else(|| panic!("the parser never walked `{path}`"));
    let mut out = Keys::new();
    for k in known {
        let child = join(path, &k);
        let with = |v: toml::Value| {
            let mut t = toml::Table::new();
            t.insert(k.clone(), v);
            place(t)
        };
        let empty = || toml::Value::Table(toml::Table::new());
        let shape = if walked(&with(empty())).iter().any(|(p, _)| *p == child) {
            let k = k.clone();
            Shape::Table(discover(
                &|t| {
                    let mut outer = toml::Table::new();
                    outer.insert(k.clone(), toml::Value::Table(t));
                    place(outer)
                },
                &child,
            ))
        } else if walked(&with(toml::Value::Array(vec![empty()])))
            .iter()
            .any(|(p, _)| *p == format!("{child}[0]"))
        {
            let k = k.clone();
            Shape::Array(discover(
                &|t| {
                    let mut outer = toml::Table::new();
                    outer.insert(k.clone(), toml::Value::Array(vec![toml::Value::Table(t)]));
                    place(outer)
                },
                &format!("{child}[0]"),
            ))
        } else {
            Shape::Value
        };
        out.insert(k, shape);
    }
    out
}

/// Every key the parser accepts, by top-level key.
fn parser_keys() -> Keys {
    discover(&|t| t, "")
}

/// The `## ` sections of a markdown text: heading line → body.
fn sections(doc: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut starts: Vec<usize> = doc.match_indices("\n## ").map(|(i, _)| i + 1).collect();
    starts.push(doc.len());
    for w in starts.windows(2) {
        let text = &doc[w[0]..w[1]];
        let (heading, body) = text.split_once('\n').unwrap_or((text, ""));
        out.push((heading, body));
    }
    out
}

/// The first column of each table row of `body` that is a single backticked word.
fn documented_rows(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(k, _)| k))
        .filter(|k| !k.contains(['`', ' ']))
        .collect()
}

/// The ```` ```toml ```` blocks of `text`.
fn toml_blocks(text: &str) -> Vec<&str> {
    text.split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split_once("\n```").map(|(code, _)| code))
        .collect()
}

/// What is wrong with `doc` as the documentation of `keys`: one line per problem.
fn problems(keys: &Keys, doc: &str) -> Vec<String> {
    let sections = sections(doc);
    let value_types = sections
        .iter()
        .find(|(h, _)| h.contains("Value types"))
        .map_or("", |(_, b)| *b);
    let mut out = Vec::new();
    for (name, shape) in keys {
        let (heading, children) = match shape {
            Shape::Table(k) => (format!("`[{name}]`"), k),
            Shape::Array(k) => (format!("`[[{name}]]`"), k),
            Shape::Value => {
                if !doc.contains(&format!("`{name}`")) {
                    out.push(format!("`{name}` is not documented"));
                }
                continue;
            }
        };
        let Some((_, body)) = sections.iter().find(|(h, _)| h.contains(&heading)) else {
            out.push(format!("no section for {heading}"));
            continue;
        };
        let rows = documented_rows(body);
        for (key, shape) in children {
            if !rows.contains(&key.as_str()) {
                out.push(format!("{heading} has no row for `{key}`"));
            }
            // Keys of inline tables (a window's `max`, `per`) are described in the section
            // or with their value type.
            let mut nested = Vec::new();
            collect_leaves(shape, key, &mut nested);
            for (path, leaf) in nested {
                let needle = format!("`{leaf}`");
                if !body.contains(&needle) && !value_types.contains(&needle) {
                    out.push(format!("{heading}: `{path}` is not described"));
                }
            }
        }
        for row in rows {
            if !children.contains_key(row) {
                out.push(format!(
                    "{heading} documents `{row}`, which the parser does not accept"
                ));
            }
        }
    }
    out
}

/// The keys inside an inline table at `path`, with their dotted paths.
fn collect_leaves(shape: &Shape, path: &str, out: &mut Vec<(String, String)>) {
    if let Shape::Table(keys) | Shape::Array(keys) = shape {
        for (k, s) in keys {
            let p = format!("{path}.{k}");
            out.push((p.clone(), k.clone()));
            collect_leaves(s, &p, out);
        }
    }
}

/// Keys of `keys` that `example` never sets (arrays of tables: in none of their tables).
fn unused(keys: &Keys, example: &toml::Table, path: &str, out: &mut Vec<String>) {
    for (k, shape) in keys {
        let p = join(path, k);
        let Some(v) = example.get(k) else {
            out.push(p);
            continue;
        };
        match (shape, v) {
            (Shape::Table(inner), toml::Value::Table(t)) => unused(inner, t, &p, out),
            (Shape::Array(inner), toml::Value::Array(items)) => {
                // A key counts as used when any of the tables sets it.
                let mut merged = toml::Table::new();
                for item in items.iter().filter_map(toml::Value::as_table) {
                    for (ik, iv) in item {
                        merged.entry(ik.clone()).or_insert_with(|| iv.clone());
                    }
                }
                unused(inner, &merged, &p, out);
            }
            _ => {}
        }
    }
}

#[test]
fn the_parser_knows_its_sections_and_their_shapes() {
    let keys = parser_keys();
    // A few fixed points, so a broken discovery cannot pass the tests below vacuously.
    assert!(matches!(keys.get("server"), Some(Shape::Table(k)) if k.contains_key("listen")));
    assert!(matches!(keys.get("route"), Some(Shape::Array(k)) if k.contains_key("path")));
    assert!(matches!(keys.get("issuers"), Some(Shape::Array(k)) if k.contains_key("leeway")));
    let Some(Shape::Array(route)) = keys.get("route") else {
        unreachable!()
    };
    let quota = route.get("quota");
    assert!(
        matches!(quota, Some(Shape::Table(k)) if k.contains_key("max") && k.contains_key("per")),
        "{quota:?}"
    );
    assert!(matches!(route.get("name"), Some(Shape::Value)));
}

#[test]
fn docs_config_md_documents_every_key_the_parser_accepts() {
    let problems = problems(&parser_keys(), DOC);
    assert!(
        problems.is_empty(),
        "docs/config.md is out of date with the config parser:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_key_without_a_doc_line_is_caught() {
    let mut keys = parser_keys();
    let Some(Shape::Table(tokens)) = keys.get_mut("tokens") else {
        panic!("no [tokens]")
    };
    tokens.insert("refresh_leeway".into(), Shape::Value);
    assert_eq!(
        problems(&keys, DOC),
        ["`[tokens]` has no row for `refresh_leeway`"]
    );
    // A whole new section, and a documented key the parser no longer accepts.
    let mut keys = parser_keys();
    keys.insert("sessions".into(), Shape::Table(Keys::new()));
    if let Some(Shape::Table(t)) = keys.get_mut("tokens") {
        t.remove("leeway");
    }
    assert_eq!(
        problems(&keys, DOC),
        [
            "no section for `[sessions]`",
            "`[tokens]` documents `leeway`, which the parser does not accept",
        ]
    );
}

#[test]
fn every_toml_example_in_docs_config_md_parses() {
    let blocks = toml_blocks(DOC);
    assert!(blocks.len() >= 10, "only {} examples found", blocks.len());
    for block in blocks {
        if let Err(e) = parse(block) {
            panic!("an example in docs/config.md does not parse:\n{e}\n---\n{block}");
        }
    }
}

#[test]
fn the_complete_example_sets_every_key() {
    let (_, body) = sections(DOC)
        .into_iter()
        .find(|(h, _)| h.contains("Complete example"))
        .expect("a `## Complete example` section");
    let [example] = toml_blocks(body)[..] else {
        panic!("the complete example is one ```toml block")
    };
    let table: toml::Table = example.parse().expect("valid TOML");
    let mut missing = Vec::new();
    unused(&parser_keys(), &table, "", &mut missing);
    assert!(
        missing.is_empty(),
        "the complete example in docs/config.md leaves out: {}",
        missing.join(", ")
    );
}
