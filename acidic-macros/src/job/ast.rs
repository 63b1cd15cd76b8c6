//! Typed options of `#[acidic_job(...)]`. Every value keeps the user's tokens for spans.

use proc_macro2::{Span, TokenStream};
use syn::LitStr;

/// The option keys, typed at the parse boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptionKey {
    Kind,
    Queue,
    Priority,
    MaxAttempts,
    UniqueBy,
    BackoffBaseMs,
    BackoffMaxMs,
}

impl OptionKey {
    pub(crate) const ALL: [OptionKey; 7] = [
        OptionKey::Kind,
        OptionKey::Queue,
        OptionKey::Priority,
        OptionKey::MaxAttempts,
        OptionKey::UniqueBy,
        OptionKey::BackoffBaseMs,
        OptionKey::BackoffMaxMs,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            OptionKey::Kind => "kind",
            OptionKey::Queue => "queue",
            OptionKey::Priority => "priority",
            OptionKey::MaxAttempts => "max_attempts",
            OptionKey::UniqueBy => "unique_by",
            OptionKey::BackoffBaseMs => "backoff_base_ms",
            OptionKey::BackoffMaxMs => "backoff_max_ms",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<OptionKey> {
        OptionKey::ALL.into_iter().find(|k| k.name() == name)
    }

    /// "`kind`, `queue`, ..." for error messages.
    pub(crate) fn list() -> String {
        OptionKey::ALL
            .iter()
            .map(|k| format!("`{}`", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An option given as an integer literal, with the tokens it was written as.
#[derive(Debug, Clone)]
pub(crate) struct IntOption<T> {
    pub(crate) value: T,
    pub(crate) tokens: TokenStream,
}

/// The `unique_by` option.
#[derive(Debug, Clone)]
pub(crate) enum UniqueBy {
    /// `"job_id"`.
    JobId,
    /// `"args"`.
    Args,
    /// `["field_a", ...]`; `list_span` covers the brackets.
    Fields {
        list_span: Span,
        fields: Vec<LitStr>,
    },
}

/// Everything given to `#[acidic_job(...)]`; `None` means "not given, use the default".
#[derive(Debug, Clone, Default)]
pub(crate) struct JobAttr {
    pub(crate) kind: Option<LitStr>,
    pub(crate) queue: Option<LitStr>,
    pub(crate) priority: Option<IntOption<i16>>,
    pub(crate) max_attempts: Option<IntOption<u32>>,
    pub(crate) unique_by: Option<UniqueBy>,
    pub(crate) backoff_base_ms: Option<IntOption<u64>>,
    pub(crate) backoff_max_ms: Option<IntOption<u64>>,
}

/// How a field appears in the job's serialised arguments, read from its `#[serde(...)]`
/// attributes (the runtime keys `unique_by` fields by their serialised names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SerdeName {
    /// Serialised under its Rust name.
    Same,
    /// `#[serde(rename = "...")]`.
    Renamed(String),
    /// An attribute that changes or removes the field in ways `unique_by` cannot follow
    /// (`rename(serialize = ...)`, `flatten`, `skip`, ...): the attribute's name.
    Unsupported(String),
}

/// The serde view of a struct with named fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct SerdeFields {
    /// `#[serde(rename_all = ...)]` on the container.
    pub(crate) rename_all: bool,
    /// Each named field: its Rust name (without `r#`) and how it is serialised.
    pub(crate) fields: Vec<(String, SerdeName)>,
}

impl SerdeFields {
    pub(crate) fn get(&self, rust_name: &str) -> Option<&SerdeName> {
        self.fields
            .iter()
            .find(|(name, _)| name == rust_name)
            .map(|(_, serde)| serde)
    }
}
