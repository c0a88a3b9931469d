//! The sweep modes that change how faults reach the models, shared by
//! `run` and `replay` (a replay must use the modes of the run it repeats):
//! `--events` (the random nemesis also aims faults at protocol events)
//! and `--buggify` (the models take rare but legal paths more often).

use clap::Args;

use kzsim_sim::nemesis::OnRandom;
use kzsim_sim::scenario::Scenario;
use kzsim_sim::triggers::default_random_kinds;

/// The flags.
#[derive(Args, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultModes {
    /// Aim random faults at protocol events too: every scenario without a
    /// `[faults.on_random]` of its own gets the default one, drawing from
    /// the kinds of its own server faults (see README, "Faults aimed at
    /// protocol events").
    #[arg(long)]
    pub events: bool,
    /// BUGGIFY: the models take rare but legal paths more often.
    #[arg(long)]
    pub buggify: bool,
}

impl FaultModes {
    /// Applies the modes to `s`; returns a note when `--events` can add
    /// nothing to it (it has no server faults of its own to draw from).
    pub fn apply(self, s: &mut Scenario) -> Option<String> {
        if self.buggify {
            s.spec.buggify = true;
        }
        // A scenario's expected anomaly comes from its own schedule; with
        // faults or timings of ours added it may not show, so it is
        // allowed, no longer required.
        if self.buggify || self.events {
            if let Some(e) = s.spec.checks.expect.take() {
                s.spec.checks.allow.push(e);
            }
        }
        if self.events && s.spec.faults.on_random.is_none() {
            if default_random_kinds(&s.spec.faults).is_empty() {
                return Some(format!(
                    "note: {} has no server faults of its own, so --events aims none at its protocol events",
                    s.name
                ));
            }
            s.spec.faults.on_random = Some(OnRandom::default());
        }
        None
    }

    /// The flags as they are written on a command line (each with a
    /// leading space), for replay commands.
    pub fn flags(self) -> String {
        let mut f = String::new();
        if self.events {
            f.push_str(" --events");
        }
        if self.buggify {
            f.push_str(" --buggify");
        }
        f
    }
}
