//! The documentation's relative links resolve: every `](target)` in the top-level `*.md` files
//! and in `docs/*.md` that is not a URL names a file or directory of the repository and, when
//! it carries `#anchor` into a Markdown file, a heading of that file. Needs no Envoy.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use tollgate_testkit::root;

/// The Markdown files checked: `*.md` at the top and in `docs/`.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [root(), root().join("docs")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") && path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The lines of `text` outside fenced code blocks, with their line numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            lines.push((n + 1, line));
        }
    }
    lines
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation other than `-` and
/// `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    prose_lines(&text)
        .into_iter()
        .filter(|(_, l)| l.starts_with('#'))
        .map(|(_, l)| slug(l.trim_start_matches('#')))
        .collect()
}

/// The targets of the inline links `[text](target)` of one line.
fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(after[..end].trim());
        rest = &after[end..];
    }
    targets
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

#[test]
fn relative_links_in_the_documentation_resolve() {
    let files = markdown_files();
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "README.md is among {files:?}"
    );
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if is_external(target) || target.is_empty() {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target, None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                if !resolved.exists() {
                    broken.push(format!("{name}:{n}: {target}: no such file"));
                    continue;
                }
                // Links must stay inside the repository.
                let canonical = resolved.canonicalize().unwrap();
                if !canonical.starts_with(root().canonicalize().unwrap()) {
                    broken.push(format!("{name}:{n}: {target}: outside the repository"));
                    continue;
                }
                if let Some(anchor) = anchor {
                    if resolved.extension().is_some_and(|e| e == "md")
                        && !anchors(&resolved).iter().any(|a| a == anchor)
                    {
                        broken.push(format!("{name}:{n}: {target}: no heading #{anchor}"));
                    }
                }
            }
        }
    }
    assert!(checked > 0, "no relative link found in {files:?}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn headings_become_the_anchors_github_makes() {
    assert_eq!(slug(" Envoy's path settings"), "envoys-path-settings");
    assert_eq!(
        slug(" Credential spellings the filter does not read"),
        "credential-spellings-the-filter-does-not-read"
    );
    assert_eq!(slug(" `make soak`: 300 s"), "make-soak-300-s");
    assert_eq!(
        link_targets("see [a](docs/a.md#x) and [b](../README.md)"),
        ["docs/a.md#x", "../README.md"]
    );
}
