// Step methods with explicit lifetimes, a where clause, or written as a plain `fn` returning a
// future, still fit the dispatch that `steps!` generates.
use std::future::Future;

use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job]
#[derive(Serialize, Deserialize)]
struct Import {
    batch: u32,
}

steps!(Import: load; transform; store);

impl Import {
    async fn load<'s, 'c>(&'s self, _cx: &'s mut StepContext<'c>) -> StepResult {
        Ok(Flow::Next)
    }

    async fn transform(&self, _cx: &mut StepContext<'_>) -> StepResult
    where
        Self: Sized,
    {
        Ok(Flow::Repeat)
    }

    fn store<'a>(
        &'a self,
        cx: &'a mut StepContext<'_>,
    ) -> impl Future<Output = StepResult> + Send + 'a {
        async move {
            let _ = cx.attempt();
            Ok(Flow::Next)
        }
    }
}

fn main() {
    use acidic_runtime::RecoveryPoint;
    let names: Vec<_> = <Import as Workflow>::Step::STEPS.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["load", "transform", "store"]);
}
