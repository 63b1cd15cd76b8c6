//! A worker process of the torture test: `torture-worker <target> <worker-id>`. Runs until killed.

use acidic_tests::torture::{Target, run_worker};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(id)) = (args.next(), args.next()) else {
        eprintln!("usage: torture-worker <postgres:SCHEMA@URL | sqlite:PATH> <worker-id>");
        return std::process::ExitCode::from(2);
    };
    let Some(target) = Target::parse(&target) else {
        eprintln!("torture-worker: cannot parse target `{target}`");
        return std::process::ExitCode::from(2);
    };
    match run_worker(&target, &id).await {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("torture-worker {id}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
