//! The generated code passes under strict lints in the user's crate.
#![deny(warnings, missing_docs, unused_qualifications, unused_results, unreachable_pub)]
#![deny(missing_debug_implementations, trivial_casts, unused_import_braces)]

use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

/// A public job in a public module.
pub mod jobs {
    use super::*;

    /// Fulfils an order.
    #[acidic_job(unique_by = ["order_id"], priority = -1)]
    #[derive(Debug, Serialize, Deserialize)]
    pub struct FulfillOrder {
        /// The order.
        pub order_id: i64,
    }

    /// A child job.
    #[acidic_job]
    #[derive(Debug, Serialize, Deserialize)]
    pub struct ShopifyFulfill {
        /// The order.
        pub order_id: i64,
    }

    impl Perform for ShopifyFulfill {
        async fn perform(&self, _cx: &mut StepContext<'_>) -> StepResult {
            Ok(Flow::Next)
        }
    }

    steps!(FulfillOrder: process_order; fulfill_order awaits [ShopifyFulfill]);

    impl FulfillOrder {
        async fn process_order(&self, _cx: &mut StepContext<'_>) -> StepResult {
            Ok(Flow::Next)
        }
        async fn fulfill_order(&self, _cx: &mut StepContext<'_>) -> StepResult {
            Ok(Flow::Next)
        }
    }
}

fn main() {
    use acidic_runtime::RecoveryPoint;
    assert_eq!(<jobs::FulfillOrder as Workflow>::Step::STEPS.len(), 2);
}
