use acidic_runtime::prelude::*;

#[acidic_job(queue = "mail")]
fn send_receipt() {}

fn main() {}
