use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job]
#[derive(Serialize, Deserialize)]
enum SendReceipt {
    Order(i64),
}

fn main() {}
