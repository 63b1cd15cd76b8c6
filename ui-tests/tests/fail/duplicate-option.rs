use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job(queue = "mail", priority = 1, queue = "orders")]
#[derive(Serialize, Deserialize)]
struct SendReceipt {
    order_id: i64,
}

fn main() {}
