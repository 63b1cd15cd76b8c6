use acidic_runtime::prelude::*;

#[acidic_job]
struct SendReceipt {
    order_id: i64,
}

fn main() {}
