//! The layout rule of `medic-core`: one module per function (named as under `functions/`) beside
//! the shared vocabulary, with no import circles between top-level modules and no function module
//! using another. Read from the source, so a new `use` that breaks it fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FUNCTION_MODULES: [&str; 5] = ["alarm_responder", "instance_healer", "notifier", "rds_rerouter", "reconciler"];
/// Stands in for the other functions' events, so it decides by their rules.
const USES_OTHER_FUNCTIONS: &str = "reconciler";

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Top-level module → the other top-level modules its files name through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" {
            continue;
        }
        let files: Vec<PathBuf> = if path.is_dir() {
            std::fs::read_dir(&path).unwrap().map(|file| file.unwrap().path()).collect()
        } else {
            vec![path]
        };
        let used: &mut BTreeSet<String> = graph.entry(name.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            for (index, _) in text.match_indices("crate::") {
                let rest = &text[index + "crate::".len()..];
                let module: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if !module.is_empty() && module != name {
                    used.insert(module);
                }
            }
        }
    }
    graph
}

fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(start) = path.iter().position(|seen| seen == node) {
        let mut cycle = path[start..].to_vec();
        cycle.push(node.to_owned());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_owned());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(cycle) = cycle_from(graph, next, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node.to_owned());
    None
}

#[test]
fn given_medic_core_when_its_imports_are_read_then_no_module_imports_itself_through_others() {
    let graph = imports();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let cycle = cycle_from(&graph, module, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "import circle: {}", cycle.unwrap_or_default().join(" → "));
    }
}

#[test]
fn given_a_function_module_but_the_reconciler_when_its_imports_are_read_then_it_uses_only_shared_modules() {
    let graph = imports();
    for function in FUNCTION_MODULES {
        let used = graph.get(function).unwrap_or_else(|| panic!("medic-core has no module {function}"));
        if function == USES_OTHER_FUNCTIONS {
            continue;
        }
        let others: Vec<&String> = used.iter().filter(|module| FUNCTION_MODULES.contains(&module.as_str())).collect();
        assert!(
            others.is_empty(),
            "{function} uses function modules {others:?}: move what they share to a shared module"
        );
    }
}

#[test]
fn given_the_functions_directory_when_listed_then_each_function_has_its_module_in_medic_core() {
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functions");
    let graph = imports();
    for entry in std::fs::read_dir(functions).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().replace('-', "_");
        assert!(graph.contains_key(&name), "functions/{name} has no module of the same name in medic-core");
        assert!(FUNCTION_MODULES.contains(&name.as_str()), "{name} is missing from FUNCTION_MODULES");
    }
}
