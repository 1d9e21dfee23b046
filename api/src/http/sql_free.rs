//! The HTTP layer holds no SQL: handlers call the views' queries
//! (`projections::views::*::query`, `projections::audit::pages`, …) and the API's own store
//! (`crate::store`). This test reads every file under `src/http` and fails on a query there.

use std::path::{Path, PathBuf};

/// What gives SQL away (this file is left out: it names them).
const FORBIDDEN: &[&str] = &[
    "sqlx::query",
    "query_as(",
    "query_scalar(",
    "\"SELECT ",
    "\"INSERT ",
    "\"UPDATE ",
    "\"DELETE ",
    "\"WITH ",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_file_of_the_http_layer_holds_sql() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 10, "found the HTTP layer's files");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("sql_free.rs")) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if let Some(word) = FORBIDDEN.iter().find(|w| line.contains(*w)) {
                found.push(format!("{}:{}: {word}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL in the HTTP layer (move it to the view's query.rs or to crate::store):\n{}",
        found.join("\n")
    );
}
