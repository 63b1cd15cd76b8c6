use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job]
#[derive(Serialize, Deserialize)]
struct FulfillOrder {
    order_id: i64,
}

#[derive(Serialize, Deserialize)]
struct ShopifyFulfill {
    order_id: i64,
}

steps!(FulfillOrder: process_order awaits [ShopifyFulfill]; send_emails);

impl FulfillOrder {
    async fn process_order(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
    async fn send_emails(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
}

fn main() {}
