use acidic_runtime::__private::{OneStep, RecoveryPoint};
use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job]
#[derive(Serialize, Deserialize)]
struct Welcome {
    user_id: i64,
}

impl Perform for Welcome {
    async fn perform(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
}

fn assert_workflow<W: Workflow<Step = OneStep>>() {}

fn main() {
    assert_workflow::<Welcome>();
    assert_eq!(Welcome::KIND, "Welcome");
    assert_eq!(Welcome::OPTIONS, acidic_runtime::JobOptions::DEFAULT);
    assert_eq!(<Welcome as Workflow>::Step::STEPS, &[OneStep::Perform]);
}
