//! Every saved input of every fuzz target, replayed on the stable
//! toolchain: crashes found once (`regressions/<target>/`) stay fixed, and
//! the seed corpus (`seeds/<target>/`) passes. Then a short randomized run
//! per target (mutated seeds and random bytes; seed printed,
//! `CAIRN_FUZZ_SEED=N` replays it), so the checks themselves run in CI.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn saved_inputs_pass() {
    let mut total = 0;
    for (target, check) in cairn_fuzz::TARGETS {
        let seeds = inputs("seeds", target);
        assert!(!seeds.is_empty(), "{target} has no seed corpus");
        let saved = inputs("regressions", target);
        for (path, bytes) in seeds.iter().chain(&saved) {
            eprintln!("{target}: {}", path.display());
            check(bytes);
        }
        println!(
            "{target}: {} seeds, {} regressions",
            seeds.len(),
            saved.len()
        );
        total += seeds.len() + saved.len();
    }
    println!("{total} saved inputs replayed");
}

/// One input: a seed with a few bytes changed, cut or repeated, or random
/// bytes.
fn mutate(rng: &mut StdRng, seeds: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    let mut data = if seeds.is_empty() || rng.random_bool(0.2) {
        let n = rng.random_range(0..256);
        (0..n).map(|_| rng.random()).collect()
    } else {
        seeds[rng.random_range(0..seeds.len())].1.clone()
    };
    for _ in 0..rng.random_range(1..6) {
        match rng.random_range(0..4) {
            0 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] = rng.random();
            }
            1 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data.truncate(i);
            }
            2 => {
                let i = rng.random_range(0..=data.len());
                data.insert(i, rng.random());
            }
            _ if !data.is_empty() => {
                let a = rng.random_range(0..data.len());
                let b = rng.random_range(a..data.len());
                let piece = data[a..=b].to_vec();
                data.extend_from_slice(&piece);
            }
            _ => {}
        }
    }
    data
}

#[test]
fn randomized_inputs_pass() {
    let seed: u64 = std::env::var("CAIRN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("seed={seed} (replay with CAIRN_FUZZ_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    for (target, check) in cairn_fuzz::TARGETS {
        let seeds = inputs("seeds", target);
        let runs = if *target == "commands" { 300 } else { 3000 };
        for i in 0..runs {
            let data = mutate(&mut rng, &seeds);
            let outcome = std::panic::catch_unwind(|| check(&data));
            if let Err(e) = outcome {
                let dir = std::env::temp_dir().join("cairn-fuzz-failures");
                std::fs::create_dir_all(&dir).unwrap();
                let file = dir.join(format!("{target}-{seed}-{i}"));
                std::fs::write(&file, &data).unwrap();
                panic!(
                    "{target} failed on input {i} of seed {seed}, saved to {} (copy it to crates/fuzz/regressions/{target}/): {e:?}",
                    file.display()
                );
            }
        }
        println!("{target}: {runs} randomized inputs");
    }
}
