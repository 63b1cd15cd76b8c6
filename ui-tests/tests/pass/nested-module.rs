mod jobs {
    pub mod orders {
        use acidic_runtime::prelude::*;
        use serde::{Deserialize, Serialize};

        #[acidic_job(kind = "orders.cancel")]
        #[derive(Serialize, Deserialize)]
        pub struct CancelOrder {
            pub order_id: i64,
        }

        impl CancelOrder {
            pub(crate) async fn refund(&self, _cx: &mut StepContext<'_>) -> StepResult {
                Ok(Flow::Next)
            }
            pub(crate) async fn notify(&self, _cx: &mut StepContext<'_>) -> StepResult {
                Ok(Flow::Next)
            }
        }
    }
}

// The job named by its path from another module.
acidic_runtime::steps!(crate::jobs::orders::CancelOrder: refund; notify);

fn main() {
    use acidic_runtime::{Job, RecoveryPoint, Workflow};
    type Step = <jobs::orders::CancelOrder as Workflow>::Step;
    assert_eq!(jobs::orders::CancelOrder::KIND, "orders.cancel");
    assert_eq!(Step::STEPS.len(), 2);
    assert_eq!(Step::STEPS[1].name(), "notify");
}
