//! Rules of `#[acidic_job]`, one function each. Errors go to the [`Ctxt`]; nothing stops early.

use std::collections::HashSet;

use syn::{Data, DeriveInput, Fields};

use super::ast::{JobAttr, SerdeFields, SerdeName, UniqueBy};
use crate::ctxt::Ctxt;

pub(crate) fn check(attr: &JobAttr, item: &DeriveInput, serde: &SerdeFields, cx: &mut Ctxt) {
    check_is_struct(item, cx);
    check_not_generic(item, cx);
    check_non_empty_strings(attr, cx);
    check_max_attempts(attr, cx);
    check_backoff(attr, cx);
    check_unique_by_fields(attr, item, serde, cx);
}

fn check_is_struct(item: &DeriveInput, cx: &mut Ctxt) {
    let (keyword, what) = match &item.data {
        Data::Struct(_) => return,
        Data::Enum(e) => (e.enum_token.span, "an enum"),
        Data::Union(u) => (u.union_token.span, "a union"),
    };
    cx.error_at(
        keyword,
        format!(
            "`#[acidic_job]` goes on a struct, not on {what}: the struct's fields are the arguments of the job's runs; wrap this type in a struct field, e.g. `struct {}Job {{ value: {} }}`",
            item.ident, item.ident
        ),
    );
}

fn check_not_generic(item: &DeriveInput, cx: &mut Ctxt) {
    if item.generics.params.is_empty() && item.generics.where_clause.is_none() {
        return;
    }
    cx.error_spanned_by(
        &item.generics,
        format!(
            "job types cannot be generic: a job has one stable kind name stored with its runs; declare a concrete struct per kind of work instead of `{}` with type parameters",
            item.ident
        ),
    );
}

fn check_non_empty_strings(attr: &JobAttr, cx: &mut Ctxt) {
    if let Some(kind) = attr.kind.as_ref().filter(|k| k.value().trim().is_empty()) {
        cx.error_at(
            kind.span(),
            "`kind` cannot be empty: it is the job's stable name stored with each run; write e.g. `kind = \"orders.fulfill\"`, or remove it to use the type name",
        );
    }
    if let Some(queue) = attr.queue.as_ref().filter(|q| q.value().trim().is_empty()) {
        cx.error_at(
            queue.span(),
            "`queue` cannot be empty: write e.g. `queue = \"mail\"`, or remove it to use the queue \"default\"",
        );
    }
}

fn check_max_attempts(attr: &JobAttr, cx: &mut Ctxt) {
    if let Some(max) = attr.max_attempts.as_ref().filter(|m| m.value == 0) {
        cx.error_spanned_by(
            &max.tokens,
            "`max_attempts` must be at least 1: it counts the first attempt; write `max_attempts = 1` for no retries",
        );
    }
}

fn check_backoff(attr: &JobAttr, cx: &mut Ctxt) {
    if let (Some(base), Some(max)) = (&attr.backoff_base_ms, &attr.backoff_max_ms)
        && max.value < base.value
    {
        cx.error_spanned_by(
            &max.tokens,
            format!(
                "`backoff_max_ms` ({}) is smaller than `backoff_base_ms` ({}): the largest delay between retries must be at least the first one",
                max.value, base.value
            ),
        );
    }
}

fn check_unique_by_fields(attr: &JobAttr, item: &DeriveInput, serde: &SerdeFields, cx: &mut Ctxt) {
    let Some(UniqueBy::Fields { list_span, fields }) = &attr.unique_by else {
        return;
    };
    if fields.is_empty() {
        cx.error_at(
            *list_span,
            "`unique_by` lists no fields: name at least one field, e.g. `unique_by = [\"order_id\"]`, or use `unique_by = \"args\"` for all of them",
        );
        return;
    }
    let named = match &item.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named,
            _ => {
                cx.error_at(
                    *list_span,
                    format!(
                        "`unique_by` fields need a struct with named fields, and `{}` has none: use `unique_by = \"args\"` instead",
                        item.ident
                    ),
                );
                return;
            }
        },
        // Already reported by `check_is_struct`.
        _ => return,
    };
    let names: Vec<String> = named
        .named
        .iter()
        .filter_map(|f| f.ident.as_ref())
        .map(|i| syn::ext::IdentExt::unraw(i).to_string())
        .collect();
    let mut seen = HashSet::new();
    for field in fields {
        let name = field.value();
        if !names.contains(&name) {
            cx.error_at(
                field.span(),
                format!(
                    "`unique_by` names the field \"{name}\", but `{}` has no such field: its fields are {}",
                    item.ident,
                    names
                        .iter()
                        .map(|n| format!("\"{n}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        } else if serde.rename_all {
            cx.error_at(
                field.span(),
                format!(
                    "`unique_by` cannot name fields of a struct with `#[serde(rename_all = ...)]`: runs are keyed by the serialised field names; use `unique_by = \"args\"`, or rename the field \"{name}\" with `#[serde(rename = \"...\")]` instead"
                ),
            );
        } else if let Some(SerdeName::Unsupported(attribute)) = serde.get(&name) {
            cx.error_at(
                field.span(),
                format!(
                    "`unique_by` cannot name the field \"{name}\", which has `#[serde({attribute})]`: runs are keyed by the serialised field names; name other fields, or use `unique_by = \"args\"`"
                ),
            );
        } else if !seen.insert(name.clone()) {
            cx.error_at(
                field.span(),
                format!("`unique_by` names the field \"{name}\" twice: list each field once"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::job::parse::parse_args;

    fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
        let mut cx = Ctxt::new();
        let attr = parse_args(args, &mut cx);
        let item: DeriveInput = syn::parse2(item).unwrap();
        let serde = crate::job::parse::serde_fields(&item);
        check(&attr, &item, &serde, &mut cx);
        cx.messages()
    }

    #[test]
    fn a_valid_job_has_no_errors() {
        let e = errors(
            quote!(
                unique_by = ["order_id"],
                max_attempts = 1,
                backoff_base_ms = 5,
                backoff_max_ms = 5
            ),
            quote!(
                struct Fulfill {
                    order_id: i64,
                    note: String,
                }
            ),
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn unique_by_missing_field() {
        let e = errors(
            quote!(unique_by = ["order", "order_id"]),
            quote!(
                struct Fulfill {
                    order_id: i64,
                    note: String,
                }
            ),
        );
        assert_eq!(
            e,
            [
                "`unique_by` names the field \"order\", but `Fulfill` has no such field: its fields are \"order_id\", \"note\""
            ]
        );
    }

    #[test]
    fn unique_by_duplicate_and_empty() {
        let e = errors(
            quote!(unique_by = ["a", "a"]),
            quote!(
                struct J {
                    a: i64,
                }
            ),
        );
        assert_eq!(
            e,
            ["`unique_by` names the field \"a\" twice: list each field once"]
        );
        let e = errors(
            quote!(unique_by = []),
            quote!(
                struct J {
                    a: i64,
                }
            ),
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("`unique_by` lists no fields"));
    }

    #[test]
    fn unique_by_fields_on_tuple_struct() {
        let e = errors(
            quote!(unique_by = ["0"]),
            quote!(
                struct J(i64);
            ),
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("need a struct with named fields"), "{e:?}");
    }

    #[test]
    fn unique_by_fields_serde_renames() {
        let e = errors(
            quote!(unique_by = ["a", "b"]),
            quote!(
                struct J {
                    #[serde(rename = "A")]
                    a: i64,
                    #[serde(flatten)]
                    b: X,
                }
            ),
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "`unique_by` cannot name the field \"b\", which has `#[serde(flatten)]`"
            )
        );
        let e = errors(
            quote!(unique_by = ["a"]),
            quote!(
                #[serde(rename_all = "camelCase")]
                struct J {
                    a: i64,
                }
            ),
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("`#[serde(rename_all = ...)]`"));
    }

    #[test]
    fn zero_max_attempts_and_inverted_backoff() {
        let e = errors(
            quote!(max_attempts = 0, backoff_base_ms = 10, backoff_max_ms = 5),
            quote!(
                struct J;
            ),
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("`max_attempts` must be at least 1"));
        assert!(e[1].starts_with("`backoff_max_ms` (5) is smaller than `backoff_base_ms` (10)"));
    }

    #[test]
    fn empty_strings() {
        let e = errors(
            quote!(kind = "", queue = " "),
            quote!(
                struct J;
            ),
        );
        assert_eq!(e.len(), 2);
        assert!(e[0].starts_with("`kind` cannot be empty"));
        assert!(e[1].starts_with("`queue` cannot be empty"));
    }

    #[test]
    fn enums_unions_and_generics_are_rejected() {
        let e = errors(
            quote!(),
            quote!(
                enum J {
                    A,
                }
            ),
        );
        assert!(e[0].starts_with("`#[acidic_job]` goes on a struct, not on an enum"));
        let e = errors(quote!(), quote!(union J { a: u8 }));
        assert!(e[0].starts_with("`#[acidic_job]` goes on a struct, not on a union"));
        let e = errors(
            quote!(),
            quote!(
                struct J<T> {
                    a: T,
                }
            ),
        );
        assert!(e[0].starts_with("job types cannot be generic"));
    }
}
