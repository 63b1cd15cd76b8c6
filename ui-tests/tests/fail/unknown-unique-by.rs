use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job(unique_by = "arguments")]
#[derive(Serialize, Deserialize)]
struct SendReceipt {
    order_id: i64,
}

fn main() {}
