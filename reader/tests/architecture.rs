//! The reader's layers, checked: every path into the crate (`use crate::`,
//! `use super::`, a child module, or `crate::...` in code) goes to the
//! module's own layer or one below, and no two modules depend on each
//! other, directly or around a circle. ARCHITECTURE.md describes the same
//! layers; the order below is the one place it is written for the build.
//!
//! A module may use what its enclosing modules declare (a submodule is part
//! of its parent), so paths to an ancestor are not counted as edges; every
//! other path is, siblings included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers of `reader/src`, top to bottom: a module imports from its
/// own layer and the layers below it. The crate root (`lib.rs`,
/// `main.rs`) sits above them all.
const LAYERS: [(&str, &str); 6] = [
    ("app", "command line, wiring, the drain loop, demo"),
    ("outputs", "JSONL, console, Prometheus, OTLP, web"),
    (
        "window",
        "the rolling-window engine and the statistics on it",
    ),
    ("ingest", "rings, consumers, losses, post-mortems"),
    ("views", "the published snapshot: plain data"),
    ("support", "helpers that know nothing of the pipeline"),
];

/// Imports that go up a layer, each with the reason; the importing line
/// must carry a comment saying why too. At most two.
const UPWARD: [(&str, &str, &str); 0] = [];

/// A module: its path from the crate root (`outputs::jsonl::files`).
type Module = Vec<String>;

/// A source directory of the workspace, relative to the repository root.
fn src(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir)
}

/// The reader's sources.
const READER: &str = "reader/src";

/// Every source file of the crate in `root` and its module path.
fn modules(root: &Path) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Module, PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut p = prefix.to_vec();
                if prefix.is_empty() && name == "main" {
                    p.push("<main>".into());
                } else if !(name == "mod" || (prefix.is_empty() && name == "lib")) {
                    p.push(name);
                }
                out.insert(p, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &[], &mut out);
    out
}

/// The code of a file without comments, string and char literals.
fn code(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            i = end;
        } else if b[i] == b'"' || (b[i] == b'r' && b[i..].starts_with(b"r#\"")) {
            // A string literal (raw strings with one `#` are the only kind
            // the reader uses).
            let raw = b[i] == b'r';
            i += if raw { 3 } else { 1 };
            while i < b.len() {
                if !raw && b[i] == b'\\' {
                    i += 2;
                } else if b[i] == b'"' && (!raw || b.get(i + 1) == Some(&b'#')) {
                    i += if raw { 2 } else { 1 };
                    break;
                } else {
                    i += 1;
                }
            }
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3; // a char literal such as '{'
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            let end = text[i + 1..].find('\'').map_or(b.len(), |e| i + 1 + e + 1);
            i = end;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap().trim().to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| {
            expand(p)
                .into_iter()
                .map(|rest| format!("{prefix}{rest}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The inline modules of a file's code (`mod tests { ... }`): their byte
/// ranges and names, outermost first.
fn inline_modules(code: &str) -> Vec<(usize, usize, String)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("mod ") {
        let at = from + found;
        from = at + 4;
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &code[at + 4..];
        let name_end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after = rest[name_end..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue; // `mod name;`: a file of its own
        }
        let open = at + 4 + name_end + (rest[name_end..].len() - after.len());
        let mut depth = 0;
        let mut end = code.len();
        for (i, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push((open, end, name.to_string()));
    }
    out
}

/// The paths into the crate a file names: its `use` items, expanded, and
/// every `crate::`/`super::`/`self::` path in its code. Each with its line
/// and the inline modules (`mod tests { ... }`) it sits in, which count as
/// modules of their own.
fn paths(text: &str) -> Vec<(usize, Vec<String>, String)> {
    let code = code(text);
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let inline = inline_modules(&code);
    let within = |at: usize| -> Vec<String> {
        inline
            .iter()
            .filter(|(start, end, _)| *start < at && at < *end)
            .map(|(_, _, name)| name.clone())
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(found) = code[rest..].find("use ") {
        let at = rest + found;
        rest = at + 4;
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            break;
        };
        let tree: String = code[at + 4..at + end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for path in expand(&tree) {
            out.push((line_of(at), within(at), path.replace(' ', "")));
        }
    }
    let bytes = code.as_bytes();
    for key in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(key) {
            let at = from + found;
            from = at + key.len();
            if at > 0
                && (bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':')
            {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| at + e);
            let path = code[at..end].trim_end_matches(':').to_string();
            out.push((line_of(at), within(at), path));
        }
    }
    out
}

/// The module a path refers to (its longest prefix that is a module),
/// seen from `from`; `None` for paths outside the crate.
fn resolve(from: &Module, path: &str, modules: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Module = match segments.first().copied() {
        Some("crate") => {
            segments.remove(0);
            Vec::new()
        }
        Some("self") => {
            segments.remove(0);
            from.clone()
        }
        Some("super") => {
            let mut base = from.clone();
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
            base
        }
        Some(first) => {
            // A child module of `from` (Rust 2018 paths), else outside.
            let mut child = from.clone();
            child.push(first.to_string());
            if !modules.contains_key(&child) {
                return None;
            }
            from.clone()
        }
        None => return None,
    };
    let mut found = base.clone();
    for s in segments {
        base.push(s.to_string());
        if modules.contains_key(&base) {
            found = base.clone();
        } else {
            break;
        }
    }
    Some(found)
}

fn layer(module: &Module) -> usize {
    match module.first() {
        Some(first) => LAYERS
            .iter()
            .position(|(name, _)| name == first)
            .unwrap_or_else(|| panic!("module {} is in no layer of LAYERS", module.join("::"))),
        // The crate root and main: above every layer.
        None => 0,
    }
}

fn is_ancestor(ancestor: &Module, of: &Module) -> bool {
    ancestor.len() < of.len() && of.starts_with(ancestor)
}

/// Every edge `from -> to` of the crate in `root`, with the lines that
/// make it.
fn edges(root: &Path) -> BTreeMap<(Module, Module), BTreeSet<(PathBuf, usize)>> {
    let modules = modules(root);
    let mut edges: BTreeMap<(Module, Module), BTreeSet<(PathBuf, usize)>> = BTreeMap::new();
    for (module, path) in &modules {
        let text = std::fs::read_to_string(path).unwrap();
        for (line, inline, p) in paths(&text) {
            let mut from = module.clone();
            from.extend(inline);
            let Some(to) = resolve(&from, &p, &modules) else {
                continue;
            };
            if to == from || is_ancestor(&to, &from) || to.is_empty() {
                continue;
            }
            edges
                .entry((from, to))
                .or_default()
                .insert((path.clone(), line));
        }
    }
    edges
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn every_module_is_in_a_layer_and_the_docs_name_them_in_order() {
    for module in modules(&src(READER)).keys() {
        if module.first().is_some_and(|m| m != "<main>") {
            layer(module);
        }
    }
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md at the repository root");
    let mut at = 0;
    for (name, _) in LAYERS {
        let folder = format!("reader/src/{name}/");
        let found = doc[at..]
            .find(&folder)
            .unwrap_or_else(|| panic!("ARCHITECTURE.md names {folder} after the layers above it"));
        at += found;
    }
}

#[test]
fn imports_go_down_the_layers() {
    let mut upward = Vec::new();
    for ((from, to), lines) in edges(&src(READER)) {
        if from.first().is_none_or(|m| m == "<main>") {
            continue;
        }
        if layer(&to) < layer(&from) {
            for (path, line) in lines {
                upward.push((name(&from), name(&to), path, line));
            }
        }
    }
    let mut unexplained = Vec::new();
    for (from, to, path, line) in &upward {
        let listed = UPWARD.iter().any(|(f, t, _)| f == from && t == to);
        let text = std::fs::read_to_string(path).unwrap();
        let commented = text
            .lines()
            .take(*line)
            .skip(line.saturating_sub(3))
            .any(|l| l.contains("//"));
        if !listed || !commented {
            unexplained.push(format!(
                "{}:{line}: {from} imports {to}, a layer up",
                path.display()
            ));
        }
    }
    assert!(
        unexplained.is_empty(),
        "imports must go to the same layer or one below (LAYERS in {}); an exception needs an entry in UPWARD and a comment on the line:\n{}",
        file!(),
        unexplained.join("\n")
    );
    let pairs: BTreeSet<(String, String)> = upward.into_iter().map(|(f, t, _, _)| (f, t)).collect();
    assert!(pairs.len() <= 2, "at most two upward imports: {pairs:?}");
}

/// The import cycles among the modules of the crate in `root`.
fn cycles(root: &Path) -> Vec<String> {
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, to) in edges(root).keys() {
        graph.entry(from.clone()).or_default().insert(to.clone());
    }
    // Depth-first search for a back edge; reports the cycle it closes.
    fn visit(
        m: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        stack: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(at) = stack.iter().position(|s| s == m) {
            let cycle: Vec<String> = stack[at..].iter().chain([m]).map(name).collect();
            cycles.push(cycle.join(" -> "));
            return;
        }
        stack.push(m.clone());
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, stack, done, cycles);
        }
        stack.pop();
        done.insert(m.clone());
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    cycles
}

#[test]
fn no_import_cycle_in_the_workspace() {
    let mut found = Vec::new();
    for dir in [
        READER,
        "src",
        "ffi/src",
        "macros/src",
        "python/src",
        "loom-tests/src",
    ] {
        for cycle in cycles(&src(dir)) {
            found.push(format!("{dir}: {cycle}"));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_checker_sees_use_trees_and_paths_in_code() {
    let text = "use crate::{a::b, c::{d, e as f}};\nuse super::g;\n// use crate::comment;\nfn x() { crate::h::i(); let s = \"crate::string\"; }\n";
    let found: Vec<String> = paths(text).into_iter().map(|(_, _, p)| p).collect();
    for want in [
        "crate::a::b",
        "crate::c::d",
        "crate::c::e",
        "super::g",
        "crate::h::i",
    ] {
        assert!(found.iter().any(|p| p == want), "{want} in {found:?}");
    }
    assert!(!found
        .iter()
        .any(|p| p.contains("comment") || p.contains("string")));
}
