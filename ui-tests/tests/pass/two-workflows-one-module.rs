use acidic_runtime::RecoveryPoint;
use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job]
#[derive(Serialize, Deserialize)]
struct Signup {
    email: String,
}

#[acidic_job]
#[derive(Serialize, Deserialize)]
struct Offboard {
    email: String,
}

// Both generate a recovery-point enum; each lives in its own anonymous const.
steps!(Signup: create_account; send_welcome);
steps!(Offboard: send_goodbye; delete_account);

impl Signup {
    async fn create_account(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
    async fn send_welcome(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
}

impl Offboard {
    async fn send_goodbye(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
    async fn delete_account(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
}

fn main() {
    assert_eq!(<Signup as Workflow>::Step::STEPS[0].name(), "create_account");
    assert_eq!(<Offboard as Workflow>::Step::STEPS[0].name(), "send_goodbye");
}
