use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job(queu = "mail")]
#[derive(Serialize, Deserialize)]
struct SendReceipt {
    order_id: i64,
}

fn main() {}
