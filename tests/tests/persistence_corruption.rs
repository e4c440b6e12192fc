//! Corruption of a real data directory: truncated table file, flipped
//! bytes, deleted file, garbage `CURRENT`, unexpected files and
//! directories. The server falls back to the previous good generation (or
//! follows `on_corrupt`: `refuse` changes nothing and refuses every start),
//! quarantines the bad one, stays operational, and takes a fresh snapshot.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use cairn_server::OnCorrupt;
use cairn_tests::data::{Dataset, Spec};
use cairn_tests::fixtures::{self, Ctx};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A data directory with two committed generations: `a` (older) and `b`.
struct Two {
    dir: PathBuf,
    a: Dataset,
    b: Dataset,
    gen_a: u64,
    gen_b: u64,
}

impl Two {
    fn gen_dir(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("gen-{generation:020}"))
    }
}

async fn two_generations(ctx: &Ctx, seed: u64) -> anyhow::Result<Two> {
    let dir = ctx.tempdir()?.join("data");
    let a = Spec::full(seed, 300).generate();
    let node = ctx.start(ctx.builder(&dir)).await?;
    node.populate(&a).await?;
    let gen_a = node.snapshot().await?.generation;
    let extra = Spec::small(seed ^ 7, 200).prefixed("b:").generate();
    node.populate(&extra).await?;
    let mut b = a.clone();
    b.extend(&extra);
    let gen_b = node.snapshot().await?.generation;
    node.shutdown_nosave().await?;
    ensure!(gen_b > gen_a);
    Ok(Two {
        dir,
        a,
        b,
        gen_a,
        gen_b,
    })
}

fn quarantined(dir: &Path) -> Vec<String> {
    fixtures::entries(&dir.join("quarantine"))
}

/// Starts with the default policy (fallback), expects `want` from
/// `generation`, the damaged `bad` generation quarantined, and a working
/// server that commits a fresh snapshot (checked after one more restart).
async fn expect_loaded(
    ctx: &Ctx,
    two: &Two,
    generation: u64,
    want: &Dataset,
    bad: Option<u64>,
    seed: u64,
) -> anyhow::Result<()> {
    let node = ctx.start(ctx.builder(&two.dir)).await?;
    let status = node.handle().persistence_status();
    ensure!(
        status.current_generation == Some(generation),
        "loaded generation {:?}, want {generation}",
        status.current_generation
    );
    node.check(want, "after the damage").await?;
    if let Some(bad) = bad {
        let q = quarantined(&two.dir);
        ensure!(
            q.iter().any(|n| n.starts_with(&format!("{bad:020}-"))),
            "generation {bad} not quarantined: {q:?}"
        );
        ensure!(status.quarantined_generations >= 1, "{status:?}");
        let info = node.info("persistence").await?;
        ensure!(
            info.get("cairn_quarantined_generations")
                .is_some_and(|n| n != "0"),
            "{info:?}"
        );
    }
    let fresh = Spec::small(seed ^ 9, 100).prefixed("fresh:").generate();
    node.populate(&fresh).await?;
    let snap = node.snapshot().await?;
    ensure!(
        snap.generation > two.gen_b,
        "generation number reused: {} <= {}",
        snap.generation,
        two.gen_b
    );
    node.shutdown_nosave().await?;
    let mut all = want.clone();
    all.extend(&fresh);
    let node = ctx.start(ctx.builder(&two.dir)).await?;
    node.check(&all, "after the fresh snapshot").await?;
    node.shutdown_nosave().await
}

fn pick<'a>(rng: &mut StdRng, files: &'a [PathBuf], what: &str) -> anyhow::Result<&'a PathBuf> {
    ensure!(!files.is_empty(), "no {what} found");
    Ok(&files[rng.random_range(0..files.len())])
}

#[test]
fn should_fall_back_when_a_table_file_is_truncated() -> anyhow::Result<()> {
    let seed = fixtures::seed("corrupt-truncate");
    fixtures::run("corrupt-truncate", |ctx| async move {
        let two = two_generations(&ctx, seed).await?;
        let tables: Vec<PathBuf> = fixtures::files_below(&two.gen_dir(two.gen_b))
            .into_iter()
            .filter(|p| p.components().any(|c| c.as_os_str() == "tables"))
            .collect();
        let victim = pick(&mut StdRng::seed_from_u64(seed), &tables, "table file")?;
        let len = std::fs::metadata(victim)?.len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(victim)?
            .set_len(len / 2)?;
        println!(
            "truncated {} from {len} to {} bytes",
            victim.display(),
            len / 2
        );
        expect_loaded(&ctx, &two, two.gen_a, &two.a, Some(two.gen_b), seed).await
    })
}

#[test]
fn should_fall_back_when_bytes_are_flipped() -> anyhow::Result<()> {
    let seed = fixtures::seed("corrupt-flip");
    fixtures::run("corrupt-flip", |ctx| async move {
        let two = two_generations(&ctx, seed).await?;
        let mut rng = StdRng::seed_from_u64(seed);
        let files: Vec<PathBuf> = fixtures::files_below(&two.gen_dir(two.gen_b))
            .into_iter()
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
            .collect();
        let victim = pick(&mut rng, &files, "non-empty file")?.clone();
        let mut bytes = std::fs::read(&victim)?;
        let flips = rng.random_range(1..=4);
        for _ in 0..flips {
            let at = rng.random_range(0..bytes.len());
            bytes[at] ^= 1 << rng.random_range(0..8);
        }
        std::fs::write(&victim, &bytes)?;
        println!("flipped {flips} bit(s) in {}", victim.display());
        expect_loaded(&ctx, &two, two.gen_a, &two.a, Some(two.gen_b), seed).await
    })
}

#[test]
fn should_fall_back_when_a_file_is_deleted() -> anyhow::Result<()> {
    let seed = fixtures::seed("corrupt-delete");
    fixtures::run("corrupt-delete", |ctx| async move {
        let two = two_generations(&ctx, seed).await?;
        let files = fixtures::files_below(&two.gen_dir(two.gen_b));
        let victim = pick(&mut StdRng::seed_from_u64(seed), &files, "file")?;
        std::fs::remove_file(victim)?;
        println!("deleted {}", victim.display());
        expect_loaded(&ctx, &two, two.gen_a, &two.a, Some(two.gen_b), seed).await
    })
}

#[test]
fn should_fall_back_when_a_generation_holds_a_foreign_file() -> anyhow::Result<()> {
    let seed = fixtures::seed("corrupt-foreign");
    fixtures::run("corrupt-foreign", |ctx| async move {
        let two = two_generations(&ctx, seed).await?;
        let db = two.gen_dir(two.gen_b).join("db");
        std::fs::create_dir_all(db.join("keyspaces").join("not-a-number"))?;
        expect_loaded(&ctx, &two, two.gen_a, &two.a, Some(two.gen_b), seed).await
    })
}

#[test]
fn should_load_the_newest_good_generation_when_current_is_garbage() -> anyhow::Result<()> {
    let seed = fixtures::seed("corrupt-current");
    fixtures::run("corrupt-current", |ctx| async move {
        let two = two_generations(&ctx, seed).await?;
        let mut garbage = vec![0u8; 84];
        StdRng::seed_from_u64(seed).fill(&mut garbage[..]);
        std::fs::write(two.dir.join("CURRENT"), &garbage)?;
        expect_loaded(&ctx, &two, two.gen_b, &two.b, None, seed).await?;
        let q = quarantined(&two.dir);
        ensure!(
            q.iter().any(|n| n.starts_with("CURRENT")),
            "garbage CURRENT not quarantined: {q:?}"
        );
        Ok(())
    })
}

#[test]
fn should_ignore_unexpected_files_and_directories_in_the_data_dir() -> anyhow::Result<()> {
    let seed = fixtures::seed("corrupt-strangers");
    fixtures::run("corrupt-strangers", |ctx| async move {
        let two = two_generations(&ctx, seed).await?;
        let strangers = [
            two.dir.join("notes.txt"),
            two.dir.join("gen-123"),
            two.dir.join("gen-99999999999999999999x"),
            two.dir.join("backup").join("CURRENT"),
            two.dir.join("CURRENT.bak"),
        ];
        for (i, p) in strangers.iter().enumerate() {
            std::fs::create_dir_all(p.parent().context("parent")?)?;
            if i == 1 {
                std::fs::create_dir_all(p)?;
            } else {
                std::fs::write(p, b"not cairn's")?;
            }
        }
        std::fs::create_dir_all(two.dir.join("empty-dir"))?;
        expect_loaded(&ctx, &two, two.gen_b, &two.b, None, seed).await?;
        for p in &strangers {
            ensure!(p.exists(), "{} was removed", p.display());
        }
        ensure!(
            quarantined(&two.dir).is_empty(),
            "something was quarantined: {:?}",
            quarantined(&two.dir)
        );
        Ok(())
    })
}

fn damage_generation(two: &Two, generation: u64) -> anyhow::Result<()> {
    let seal = two.gen_dir(generation).join("SEAL");
    let mut bytes = std::fs::read(&seal)?;
    let last = bytes.len().checked_sub(1).context("empty SEAL")?;
    bytes[last] ^= 0xff;
    std::fs::write(&seal, bytes)?;
    Ok(())
}

/// `on_corrupt = refuse` names the damage, changes nothing in the data
/// directory and so refuses again on every start (an automatic restart must
/// not serve older data); one start with `fallback` then accepts the older
/// generation and quarantines the damaged one.
#[test]
fn should_refuse_to_start_with_on_corrupt_refuse() -> anyhow::Result<()> {
    let seed = fixtures::seed("corrupt-refuse");
    fixtures::run("corrupt-refuse", |ctx| async move {
        let two = two_generations(&ctx, seed).await?;
        damage_generation(&two, two.gen_b)?;
        let before = fixtures::fingerprint(&two.dir)?;
        for attempt in 1..=2 {
            match ctx
                .start(ctx.builder(&two.dir).on_corrupt(OnCorrupt::Refuse))
                .await
            {
                Ok(node) => {
                    node.shutdown_nosave().await?;
                    bail!("start {attempt} succeeded despite on_corrupt = refuse");
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    println!("start {attempt} refused: {msg}");
                    ensure!(
                        msg.contains("refuse")
                            && msg.contains(&format!("generation {}", two.gen_b)),
                        "the refusal does not name the damaged generation {}: {msg}",
                        two.gen_b
                    );
                }
            }
            ensure!(
                fixtures::fingerprint(&two.dir)? == before,
                "start {attempt} under on_corrupt = refuse changed the data directory"
            );
            let q = quarantined(&two.dir);
            ensure!(q.is_empty(), "quarantined under refuse: {q:?}");
        }
        // The operator accepts the older data: one start with fallback.
        expect_loaded(&ctx, &two, two.gen_a, &two.a, Some(two.gen_b), seed).await
    })
}

#[test]
fn should_start_empty_with_on_corrupt_empty_when_no_generation_is_good() -> anyhow::Result<()> {
    let seed = fixtures::seed("corrupt-empty");
    fixtures::run("corrupt-empty", |ctx| async move {
        let two = two_generations(&ctx, seed).await?;
        damage_generation(&two, two.gen_a)?;
        damage_generation(&two, two.gen_b)?;
        // Under the default policy, no good generation means no start.
        match ctx.start(ctx.builder(&two.dir)).await {
            Ok(node) => {
                node.shutdown_nosave().await?;
                bail!("started with every generation damaged under on_corrupt = fallback");
            }
            Err(e) => println!("fallback refused: {e:#}"),
        }
        let node = ctx
            .start(ctx.builder(&two.dir).on_corrupt(OnCorrupt::Empty))
            .await?;
        ensure!(
            node.dump().await?.is_empty(),
            "on_corrupt = empty restored data"
        );
        let q = quarantined(&two.dir);
        for g in [two.gen_a, two.gen_b] {
            ensure!(
                q.iter().any(|n| n.starts_with(&format!("{g:020}-"))),
                "generation {g} not quarantined: {q:?}"
            );
        }
        let fresh = Spec::small(seed, 100).generate();
        node.populate(&fresh).await?;
        node.snapshot().await?;
        node.shutdown_nosave().await?;
        let node = ctx.start(ctx.builder(&two.dir)).await?;
        node.check(&fresh, "after the fresh snapshot").await?;
        node.shutdown_nosave().await
    })
}
