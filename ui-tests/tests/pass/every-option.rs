use std::time::Duration;

use acidic_runtime::prelude::*;
use acidic_runtime::{Backoff, JobOptions, UniqueBy};
use serde::{Deserialize, Serialize};

#[acidic_job(
    kind = "billing.charge",
    queue = "billing",
    priority = -5,
    max_attempts = 3,
    unique_by = ["customer_id", "invoice_id"],
    backoff_base_ms = 250,
    backoff_max_ms = 60_000,
)]
#[derive(Serialize, Deserialize)]
struct Charge {
    #[serde(rename = "customerId")]
    customer_id: i64,
    invoice_id: i64,
    amount_cents: i64,
}

#[acidic_job(unique_by = "args", backoff_max_ms = 10_000)]
#[derive(Serialize, Deserialize)]
struct Unit;

#[acidic_job(unique_by = "job_id", priority = 32767)]
#[derive(Serialize, Deserialize)]
struct Tuple(i64, String);

fn main() {
    assert_eq!(Charge::KIND, "billing.charge");
    assert_eq!(
        Charge::OPTIONS,
        JobOptions {
            queue: "billing",
            priority: -5,
            max_attempts: 3,
            // Fields are keyed by their serialised names.
            unique_by: UniqueBy::Fields(&["customerId", "invoice_id"]),
            backoff: Backoff {
                base: Duration::from_millis(250),
                max: Duration::from_secs(60),
            },
        }
    );
    assert_eq!(Unit::KIND, "Unit");
    assert_eq!(Unit::OPTIONS.unique_by, UniqueBy::Args);
    assert_eq!(Unit::OPTIONS.backoff.base, Backoff::DEFAULT.base);
    assert_eq!(Unit::OPTIONS.backoff.max, Duration::from_secs(10));
    assert_eq!(Tuple::OPTIONS.priority, i16::MAX);
    assert_eq!(Tuple::OPTIONS.queue, "default");
    let _ = Tuple(1, String::new()).1;
    let _ = Charge { customer_id: 1, invoice_id: 2, amount_cents: 3 }.amount_cents;
}
