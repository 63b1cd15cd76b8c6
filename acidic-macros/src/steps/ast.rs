//! Typed input of `steps!`. Every node keeps the user's tokens for spans.

use proc_macro2::Span;
use syn::{Ident, Path, Type};

syn::custom_keyword!(awaits);

/// `Job: step; step awaits [A, B]; ...`
pub(crate) struct Workflow {
    /// The job type, as written.
    pub(crate) job: Path,
    /// The steps in order (malformed ones are left out, their errors reported).
    pub(crate) steps: Vec<Step>,
}

/// One step: its name (the method to call, and the stored recovery point) and what it awaits.
pub(crate) struct Step {
    pub(crate) name: Ident,
    pub(crate) awaits: Option<Awaits>,
}

/// `awaits [A, B]`.
pub(crate) struct Awaits {
    /// Span of the brackets, for an empty list.
    pub(crate) brackets: Span,
    pub(crate) jobs: Vec<Type>,
}

impl Step {
    /// The stored name of the step: its identifier as written.
    pub(crate) fn stored_name(&self) -> String {
        self.name.to_string()
    }

    /// The name of the step's recovery-point variant: the identifier in UpperCamelCase
    /// (`send_emails` → `SendEmails`).
    pub(crate) fn variant_name(&self) -> String {
        upper_camel_case(&self.name.to_string())
    }
}

/// `foo_bar` → `FooBar`; underscores are dropped, the letter after each is uppercased, the
/// rest is kept as written.
pub(crate) fn upper_camel_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().into_iter().flat_map(char::to_uppercase);
            first.chain(chars).collect::<String>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::upper_camel_case;

    #[test]
    fn camel_case_of_step_names() {
        assert_eq!(upper_camel_case("send_emails"), "SendEmails");
        assert_eq!(upper_camel_case("foo__bar"), "FooBar");
        assert_eq!(upper_camel_case("_private"), "Private");
        assert_eq!(upper_camel_case("step_2b"), "Step2b");
        assert_eq!(upper_camel_case("fooBar"), "FooBar");
        assert_eq!(upper_camel_case("_"), "");
    }
}
