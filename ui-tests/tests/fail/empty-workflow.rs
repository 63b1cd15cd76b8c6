use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job]
#[derive(Serialize, Deserialize)]
struct FulfillOrder {
    order_id: i64,
}

steps!(FulfillOrder:);

fn main() {}
