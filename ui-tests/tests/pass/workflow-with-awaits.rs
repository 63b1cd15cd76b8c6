use acidic_runtime::RecoveryPoint;
use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job(unique_by = "args", queue = "orders", max_attempts = 8)]
#[derive(Debug, Serialize, Deserialize)]
pub struct FulfillOrder {
    pub order_id: i64,
}

#[acidic_job(kind = "shopify.fulfill")]
#[derive(Debug, Serialize, Deserialize)]
pub struct ShopifyFulfill {
    pub order_id: i64,
}

#[acidic_job]
#[derive(Debug, Serialize, Deserialize)]
pub struct PrintLabel(pub i64);

impl Perform for ShopifyFulfill {
    async fn perform(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
}

impl Perform for PrintLabel {
    async fn perform(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
}

steps!(FulfillOrder:
    process_order;
    fulfill_order awaits [ShopifyFulfill, PrintLabel];
    send_emails;
);

impl FulfillOrder {
    async fn process_order(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
    async fn fulfill_order(&self, cx: &mut StepContext<'_>) -> StepResult {
        let _key = cx.idempotency_key();
        Ok(Flow::Next)
    }
    async fn send_emails(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Finish)
    }
}

type Step = <FulfillOrder as Workflow>::Step;

fn main() {
    let names: Vec<_> = Step::STEPS.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["process_order", "fulfill_order", "send_emails"]);
    assert_eq!(Step::TERMINAL.name(), "finished");
    assert_eq!(format!("{:?}", Step::STEPS[1]), "FulfillOrder");

    let [first, second, third] = Step::STEPS else { panic!("three steps") };
    assert_eq!(first.next(), *second);
    assert_eq!(second.next(), *third);
    assert_eq!(third.next(), Step::TERMINAL);
    assert_eq!(Step::TERMINAL.next(), Step::TERMINAL);

    assert_eq!(first.awaits(), &[] as &[&str]);
    assert_eq!(second.awaits(), ["shopify.fulfill", "PrintLabel"]);
    assert_eq!(Step::TERMINAL.awaits(), &[] as &[&str]);

    assert_eq!(Step::from_name("send_emails"), Some(*third));
    assert_eq!(Step::from_name("finished"), Some(Step::TERMINAL));
    assert_eq!(Step::from_name("sendEmails"), None);
}
