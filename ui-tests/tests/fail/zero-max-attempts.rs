use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job(max_attempts = 0)]
#[derive(Serialize, Deserialize)]
struct SendReceipt {
    order_id: i64,
}

fn main() {}
