use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job(unique_by = ["order_id", "shop"])]
#[derive(Serialize, Deserialize)]
struct SendReceipt {
    order_id: i64,
    shop_id: i64,
}

fn main() {}
