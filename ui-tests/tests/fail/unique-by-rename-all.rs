use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job(unique_by = ["order_id"])]
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendReceipt {
    order_id: i64,
}

fn main() {}
