//! `make test` replays what the fuzzers know: for each target, every file of `events/<function>/`
//! (the seeds), of `fuzz/corpus/<target>/` (what `make fuzz` kept) and of
//! `fuzz/regressions/<target>/` (each crash input found, kept after its fix).

use std::path::{Path, PathBuf};

use medic_fuzz::TARGETS;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn given_the_seeds_corpus_and_crash_inputs_when_each_target_runs_them_then_none_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut seeds = 0;
    for (name, body) in TARGETS {
        let inputs = [
            root.join("events").join(name),
            root.join("fuzz/corpus").join(name),
            root.join("fuzz/regressions").join(name),
        ];
        for file in inputs.iter().flat_map(|dir| files(dir)) {
            let data = match std::fs::read(&file) {
                Ok(data) => data,
                // A `make fuzz` running beside this test replaces corpus files as it reduces them.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{}: {e}", file.display()),
            };
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "target {name} panicked on {}", file.display());
            seeds += 1;
        }
    }
    assert!(seeds >= 60, "only {seeds} inputs were replayed: is the corpus where this test looks?");
}
