//! Section 5: cost per transition of the sans-IO machines.

use super::Ctx;
use crate::report::{Section, Table};
use crate::stats::Distribution;
use crate::transitions;

/// Section 5: cost per transition of the sans-IO machines.
pub fn machine(ctx: &Ctx) -> Section {
    let plan = &ctx.plan;
    let mut sec = Section::new("5. State machine (sans-IO): cost per transition");
    sec.text(format!(
        "Whole candidacies driven by hand with answers made up in memory; one sample \
         per batch of {} cycles, {} batches; ns per transition = batch time ÷ (cycles \
         × inputs per cycle). The criterion version: `cargo bench -p tenure-bench \
         --bench machine`.",
        plan.machine_cycles, plan.machine_batches
    ));
    let f = transitions::Fixture::new();
    let mut t = Table::distributions(&["cycle", "inputs per cycle"], "ns per transition");
    let cases: [(&str, u64, &dyn Fn() -> usize); 3] = [
        (
            "leader: create → read → elected → renewed → resign → deleted",
            transitions::LEADER_CYCLE_TRANSITIONS,
            &|| transitions::leader_cycle(&f),
        ),
        (
            "follower: create → read → follow → predecessor gone → read → elected → resign → deleted",
            transitions::FOLLOWER_CYCLE_TRANSITIONS,
            &|| transitions::follower_cycle(&f),
        ),
        (
            "lease keeper: timeout → keep-alive → renewed",
            transitions::KEEPALIVE_CYCLE_TRANSITIONS,
            &|| transitions::keepalive_cycle(&f, 1),
        ),
    ];
    for (what, inputs, cycle) in cases {
        let v = transitions::per_transition_ns(
            plan.machine_batches,
            plan.machine_cycles,
            inputs,
            cycle,
        );
        t.dist_row(
            &[what.to_owned(), inputs.to_string()],
            Distribution::of(&v).as_ref(),
        );
    }
    sec.table(&t);
    sec
}
