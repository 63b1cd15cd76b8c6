use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job(backoff_base_ms = 5000, backoff_max_ms = 1000)]
#[derive(Serialize, Deserialize)]
struct SendReceipt {
    order_id: i64,
}

fn main() {}
