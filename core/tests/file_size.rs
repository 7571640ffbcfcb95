//! No source file of the workspace is over 450 lines of code (CONTRIBUTING.md): a line of
//! code is one that is not blank and not only a comment (`//`, `///`, `//!`).
//!
//! Every `*.rs` under the repository is read, except build output (`target/`), installed
//! packages (`node_modules/`) and the fuzzer's inputs and findings.

#![allow(clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

/// The most lines of code a source file may hold.
const MAX_LINES_OF_CODE: usize = 450;

/// Directories that hold no project source, by name (besides hidden ones: `.git`, `.venv`,
/// `.run` with the other revision `make differential` builds).
const SKIPPED_DIRS: [&str; 3] = ["target", "node_modules", "coverage"];

/// Directories of the fuzzer that hold its inputs and findings, not source.
const FUZZ_ARTEFACTS: [&str; 3] = ["fuzz/corpus", "fuzz/artifacts", "fuzz/coverage"];

/// The lines of code in `text`: not blank, not only a comment.
fn lines_of_code(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .count()
}

/// Every `*.rs` under `dir`, as paths relative to `root` with `/` between the parts.
fn sources(root: &Path, dir: &Path, found: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir)
        .expect("the directory is readable")
        .flatten()
    {
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .expect("under the root")
            .iter()
            .map(|part| part.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if path.is_dir() {
            let name = entry.file_name();
            let skipped = SKIPPED_DIRS.iter().any(|s| name == *s)
                || name.to_string_lossy().starts_with('.')
                || FUZZ_ARTEFACTS.contains(&relative.as_str());
            if !skipped {
                sources(root, &path, found);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push((relative, path));
        }
    }
}

#[test]
fn no_source_file_is_over_450_lines_of_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ sits in the repository");
    let mut found = Vec::new();
    sources(root, root, &mut found);
    assert!(
        found.iter().any(|(r, _)| r == "core/src/lib.rs") && found.len() > 100,
        "the workspace's sources were not found under {}",
        root.display()
    );
    let mut over: Vec<String> = found
        .iter()
        .filter_map(|(relative, path)| {
            let text = fs::read_to_string(path).expect("source is UTF-8");
            let count = lines_of_code(&text);
            (count > MAX_LINES_OF_CODE).then(|| format!("{relative}: {count} lines of code"))
        })
        .collect();
    over.sort();
    assert!(
        over.is_empty(),
        "over {MAX_LINES_OF_CODE} lines of code (split by concern):\n{}",
        over.join("\n")
    );
}

#[test]
fn a_line_of_code_is_neither_blank_nor_only_a_comment() {
    let text =
        "//! Module.\n\n/// Doc.\nfn f() {\n    // note\n    let x = 1; // trailing\n\t\n}\n";
    assert_eq!(lines_of_code(text), 3);
    assert_eq!(lines_of_code(""), 0);
    assert_eq!(lines_of_code("/* block */\n"), 1);
}
