//! The step context: the run's identity, its transaction, its durable context values.

/// What a running step can see and use. Skeleton, replaced by the real implementation.
pub struct StepContext<'r> {
    pub(crate) run_id: i64,
    pub(crate) attempt: u32,
    pub(crate) step: &'static str,
    pub(crate) _p: std::marker::PhantomData<&'r ()>,
}

impl StepContext<'_> {
    /// The run's id.
    pub fn run_id(&self) -> i64 {
        self.run_id
    }
    /// The attempt of this step, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// The step's stored name.
    pub fn step(&self) -> &'static str {
        self.step
    }
    /// A key that is the same on every attempt of this step of this run.
    pub fn idempotency_key(&self) -> String {
        format!("acidic:{}:{}", self.run_id, self.step)
    }
}
