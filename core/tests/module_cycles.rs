//! No module of the core imports a module that imports it, directly or through others: the
//! modules stay in the order a request meets them (CONTRIBUTING.md, "Layout").
//!
//! The graph is read from the source: every `crate::a`, `crate::{a, b::c}` and `super::a` that
//! leaves a file's own top-level module is an edge from that module to `a`.

#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level module a file under `src/` belongs to, and its module path.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

/// The identifiers named right after `crate::` at `rest` (one, or each of a `{...}` group).
fn named_after(rest: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    match rest.strip_prefix('{') {
        Some(group) => {
            let mut names = Vec::new();
            let mut depth = 0usize;
            let mut start = true;
            for (at, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        names.push(ident(group.get(at..).unwrap_or("")));
                    }
                    _ => {}
                }
            }
            names
        }
        None => vec![ident(rest)],
    }
}

/// Every top-level module a file's text refers to.
fn references(text: &str, own: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let before = text.get(..at).and_then(|t| t.chars().last());
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `tollgate_core::...` or `$crate::`
        }
        found.extend(named_after(text.get(at + "crate::".len()..).unwrap_or("")));
    }
    for (at, _) in text.match_indices("super::") {
        let before = text.get(..at).and_then(|t| t.chars().last());
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue; // counted with the first `super::` of a chain
        }
        let mut rest = text.get(at..).unwrap_or("");
        let mut path = own.to_vec();
        while let Some(next) = rest.strip_prefix("super::") {
            path.pop();
            rest = next;
        }
        if path.is_empty() {
            found.extend(named_after(rest));
        }
    }
    found.retain(|name| !name.is_empty() && name != "self" && name != "super");
    found
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("core/src is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).expect("under src").to_path_buf();
            let own = module_path(&relative);
            let Some(top) = own.first().cloned() else {
                continue; // lib.rs declares the modules
            };
            if top == "bin" {
                continue;
            }
            let text = fs::read_to_string(&path).expect("source is UTF-8");
            let edges = graph.entry(top.clone()).or_default();
            edges.extend(references(&text, &own).into_iter().filter(|m| *m != top));
        }
    }
    graph
}

/// A cycle through `start`, as the modules met, if there is one.
fn cycle_from(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let graph = graph();
    assert!(
        graph.len() >= 10,
        "the core's modules were not found: {graph:?}"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_from(&graph, module))
        .map(|cycle| cycle.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_reader_sees_every_form_of_import() {
    let own = vec!["verify".to_owned(), "issuer".to_owned()];
    let text = "use crate::{config::X, identity};\nuse super::super::rules;\nfn f() { crate::worker::g(); tollgate_core::denial::x(); super::jwks::y(); }";
    let found: Vec<String> = references(text, &own).into_iter().collect();
    assert_eq!(found, ["config", "identity", "rules", "worker"]);
    let cyclic: Graph = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert!(cycle_from(&cyclic, "a").is_some());
}
