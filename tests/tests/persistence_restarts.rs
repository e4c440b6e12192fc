//! Restarts: several cycles each adding and changing data, everything
//! present at the end; a restore replaces the state, it never merges.

use anyhow::ensure;
use cairn_tests::data::{self, Dataset, Mutator, Spec};
use cairn_tests::fixtures;

#[test]
fn should_keep_the_data_of_every_restart_cycle() -> anyhow::Result<()> {
    let seed = fixtures::seed("restart-cycles");
    fixtures::run("restart-cycles", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let mut model = Dataset::default();
        let mut mutator = Mutator::new(Spec::small(seed, 0));
        let cycles = 4;
        for cycle in 0..cycles {
            let node = ctx.start(ctx.builder(&dir)).await?;
            node.check(&model, &format!("start of cycle {cycle}"))
                .await?;
            let added = Spec::small(seed.wrapping_add(cycle), 300)
                .prefixed(format!("c{cycle}:"))
                .generate();
            node.populate(&added).await?;
            model.extend(&added);
            let (addr, mut m) = (node.addr(), model.clone());
            let (m, back) = tokio::task::spawn_blocking(move || {
                let r = mutator.apply_n(&mut data::connect(addr)?, &mut m, 200);
                r.map(|()| (m, mutator))
            })
            .await??;
            model = m;
            mutator = back;
            node.check(&model, &format!("end of cycle {cycle}")).await?;
            // Alternate the two ways data reaches the disk.
            if cycle % 2 == 0 {
                node.snapshot().await?;
                node.shutdown_nosave().await?;
            } else {
                node.shutdown().await?;
            }
            println!("cycle {cycle}: {} keys", model.len());
        }
        let node = ctx.start(ctx.builder(&dir)).await?;
        node.check(&model, "after the last restart").await?;
        ensure!(node.handle().persistence_status().last_load_keys_loaded == model.len() as u64);
        node.shutdown_nosave().await
    })
}

#[test]
fn should_replace_the_state_on_restore_and_never_merge() -> anyhow::Result<()> {
    let seed = fixtures::seed("restore-replaces");
    fixtures::run("restore-replaces", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let saved = Spec::full(seed, 500).generate();
        let node = ctx.start(ctx.builder(&dir)).await?;
        node.populate(&saved).await?;
        node.snapshot().await?;
        // After the snapshot: new keys, deleted keys, changed values.
        let mut live = saved.clone();
        let addr = node.addr();
        let live = tokio::task::spawn_blocking(move || {
            let mut m = Mutator::new(Spec::small(seed ^ 1, 0));
            m.apply_n(&mut data::connect(addr)?, &mut live, 400)
                .map(|()| live)
        })
        .await??;
        let extra = Spec::small(seed ^ 2, 300).prefixed("after:").generate();
        node.populate(&extra).await?;
        ensure!(
            !live.diff(&saved, 0).is_empty(),
            "the mutations changed nothing"
        );
        node.shutdown_nosave().await?;

        let node = ctx.start(ctx.builder(&dir)).await?;
        node.check(&saved, "after the restart (exactly the snapshot)")
            .await?;
        node.shutdown_nosave().await
    })
}
