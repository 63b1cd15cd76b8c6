// `steps!` and `#[acidic_job]` used from inside a `macro_rules!` macro: hygiene of the generated
// `self`/`cx` and of the user's step names still lines up.
use acidic_runtime::RecoveryPoint;
use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

macro_rules! job_with_steps {
    ($job:ident: $($step:ident);+) => {
        #[acidic_job(unique_by = ["type"])]
        #[derive(Serialize, Deserialize)]
        struct $job {
            r#type: String,
        }

        steps!($job: $($step);+);

        impl $job {
            $(
                async fn $step(&self, _cx: &mut StepContext<'_>) -> StepResult {
                    let _ = &self.r#type;
                    Ok(Flow::Next)
                }
            )+
        }
    };
}

job_with_steps!(Reindex: scan; rebuild; swap);

fn main() {
    let names: Vec<_> = <Reindex as Workflow>::Step::STEPS.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["scan", "rebuild", "swap"]);
    assert_eq!(Reindex::OPTIONS.unique_by, acidic_runtime::UniqueBy::Fields(&["type"]));
}
