use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job]
#[derive(Serialize, Deserialize)]
struct SendReceipt<T> {
    order_id: T,
}

fn main() {}
