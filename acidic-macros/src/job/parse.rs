//! Parsing of `#[acidic_job(...)]`: option tokens become typed values ([`JobAttr`]); wrong value
//! types, unknown keys and duplicates are reported here. Rules about the values themselves
//! (ranges, field names) are in `check`.

use std::str::FromStr;

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{DeriveInput, Ident, LitInt, LitStr, Token};

use super::ast::{IntOption, JobAttr, OptionKey, SerdeFields, SerdeName, UniqueBy};
use crate::ctxt::{Ctxt, skip_until};

/// Parses the attribute's arguments. Never fails as a whole: each malformed option is reported
/// and skipped, so that every mistake of the invocation shows at once.
pub(crate) fn parse_args(args: TokenStream, cx: &mut Ctxt) -> JobAttr {
    let mut attr = JobAttr::default();
    let parser = |input: ParseStream<'_>| -> syn::Result<()> {
        while !input.is_empty() {
            // Stops at the next top-level comma or at the end, whatever the option held.
            parse_option(input, &mut attr, cx);
            input.parse::<Option<Token![,]>>()?;
        }
        Ok(())
    };
    if let Err(e) = parser.parse2(args) {
        cx.syn_error(e);
    }
    attr
}

fn parse_option(input: ParseStream<'_>, attr: &mut JobAttr, cx: &mut Ctxt) {
    let at_comma = |i: ParseStream<'_>| i.peek(Token![,]);
    let key = match input.call(Ident::parse_any) {
        Ok(key) => key,
        Err(_) => {
            let bad = skip_until(input, at_comma);
            cx.error_spanned_by(
                bad,
                format!(
                    "expected an option name: write `name = value`, e.g. `queue = \"mail\"`; valid options are {}",
                    OptionKey::list()
                ),
            );
            return;
        }
    };
    let Some(known) = OptionKey::from_name(&key.unraw().to_string()) else {
        cx.error_at(
            key.span(),
            format!(
                "unknown option `{key}`: valid options are {}",
                OptionKey::list()
            ),
        );
        skip_until(input, at_comma);
        return;
    };
    let Ok(eq) = input.parse::<Token![=]>() else {
        cx.error_at(
            key.span(),
            format!(
                "option `{key}` needs a value: write `{key} = {}`",
                example(known)
            ),
        );
        skip_until(input, at_comma);
        return;
    };
    let value = skip_until(input, at_comma);
    if value.is_empty() {
        cx.error_at(
            eq.spans[0],
            format!(
                "missing value after `{key} =`: write `{key} = {}`",
                example(known)
            ),
        );
        return;
    }
    if is_set(attr, known) {
        cx.error_at(
            key.span(),
            format!("duplicate option `{key}`: each option may be given once; remove this one"),
        );
        return;
    }
    let result = match known {
        OptionKey::Kind => parse_str(value, known).map(|v| attr.kind = Some(v)),
        OptionKey::Queue => parse_str(value, known).map(|v| attr.queue = Some(v)),
        OptionKey::Priority => {
            parse_int(value, known, "from -32768 to 32767").map(|v| attr.priority = Some(v))
        }
        OptionKey::MaxAttempts => {
            parse_int(value, known, "from 1 to 4294967295").map(|v| attr.max_attempts = Some(v))
        }
        OptionKey::BackoffBaseMs => parse_int(value, known, "of milliseconds (a u64)")
            .map(|v| attr.backoff_base_ms = Some(v)),
        OptionKey::BackoffMaxMs => parse_int(value, known, "of milliseconds (a u64)")
            .map(|v| attr.backoff_max_ms = Some(v)),
        OptionKey::UniqueBy => parse_unique_by(value).map(|v| attr.unique_by = Some(v)),
    };
    if let Err(e) = result {
        cx.syn_error(e);
    }
}

fn is_set(attr: &JobAttr, key: OptionKey) -> bool {
    match key {
        OptionKey::Kind => attr.kind.is_some(),
        OptionKey::Queue => attr.queue.is_some(),
        OptionKey::Priority => attr.priority.is_some(),
        OptionKey::MaxAttempts => attr.max_attempts.is_some(),
        OptionKey::UniqueBy => attr.unique_by.is_some(),
        OptionKey::BackoffBaseMs => attr.backoff_base_ms.is_some(),
        OptionKey::BackoffMaxMs => attr.backoff_max_ms.is_some(),
    }
}

/// An example value of each option, for "write ..." hints.
fn example(key: OptionKey) -> &'static str {
    match key {
        OptionKey::Kind => "\"orders.fulfill\"",
        OptionKey::Queue => "\"mail\"",
        OptionKey::Priority => "10",
        OptionKey::MaxAttempts => "5",
        OptionKey::UniqueBy => "\"args\"",
        OptionKey::BackoffBaseMs => "500",
        OptionKey::BackoffMaxMs => "60000",
    }
}

fn parse_str(value: TokenStream, key: OptionKey) -> syn::Result<LitStr> {
    syn::parse2::<LitStr>(value.clone()).map_err(|_| {
        syn::Error::new_spanned(
            &value,
            format!(
                "`{}` expects a string literal, not {}: write `{} = {}`",
                key.name(),
                value_kind(&value),
                key.name(),
                example(key)
            ),
        )
    })
}

/// An integer literal, optionally negative, that fits `T`; `range` describes the valid values.
fn parse_int<T: FromStr>(
    value: TokenStream,
    key: OptionKey,
    range: &str,
) -> syn::Result<IntOption<T>> {
    let wrong = || {
        let found = match value_kind(&value) {
            "an integer" => String::new(), // out of range
            kind => format!(", not {kind}"),
        };
        syn::Error::new_spanned(
            &value,
            format!(
                "`{}` expects an integer {range}{found}: write `{} = {}`",
                key.name(),
                key.name(),
                example(key)
            ),
        )
    };
    let literal = |input: ParseStream<'_>| -> syn::Result<(bool, LitInt)> {
        let negative = input.parse::<Option<Token![-]>>()?.is_some();
        Ok((negative, input.parse()?))
    };
    let (negative, lit) = literal.parse2(value.clone()).map_err(|_| wrong())?;
    let digits = if negative {
        format!("-{}", lit.base10_digits())
    } else {
        lit.base10_digits().to_owned()
    };
    let value_ok = digits.parse::<T>().map_err(|_| wrong())?;
    Ok(IntOption {
        value: value_ok,
        tokens: value,
    })
}

/// What kind of value was written, for "expects X, not Y" messages.
fn value_kind(value: &TokenStream) -> &'static str {
    let mut trees = value.clone().into_iter();
    match (trees.next(), trees.next(), trees.next()) {
        (Some(TokenTree::Literal(lit)), None, _) => {
            let text = lit.to_string();
            if text.starts_with('"') || text.starts_with('r') {
                "a string"
            } else if text.starts_with('b') {
                "a byte string"
            } else if text.starts_with('\'') {
                "a character"
            } else if text.contains('.') || (text.contains('e') && !text.starts_with("0x")) {
                "a decimal number"
            } else {
                "an integer"
            }
        }
        (Some(TokenTree::Punct(p)), Some(TokenTree::Literal(_)), None) if p.as_char() == '-' => {
            "an integer"
        }
        (Some(TokenTree::Ident(i)), None, _) if i == "true" || i == "false" => "a boolean",
        (Some(TokenTree::Group(g)), None, _)
            if g.delimiter() == proc_macro2::Delimiter::Bracket =>
        {
            "a list"
        }
        _ => "an expression",
    }
}

fn parse_unique_by(value: TokenStream) -> syn::Result<UniqueBy> {
    let wrong = |tokens: &TokenStream| {
        syn::Error::new_spanned(
            tokens,
            "`unique_by` expects \"job_id\", \"args\", or a list of field names such as `[\"order_id\"]`",
        )
    };
    if let Ok(lit) = syn::parse2::<LitStr>(value.clone()) {
        return match lit.value().as_str() {
            "job_id" => Ok(UniqueBy::JobId),
            "args" => Ok(UniqueBy::Args),
            other => Err(syn::Error::new(
                lit.span(),
                format!(
                    "unknown `unique_by` value \"{other}\": expected \"job_id\" (every enqueue is a run), \"args\" (equal arguments are one run), or a list of field names such as `[\"order_id\"]`"
                ),
            )),
        };
    }
    let mut trees = value.clone().into_iter();
    let (Some(TokenTree::Group(group)), None) = (trees.next(), trees.next()) else {
        return Err(wrong(&value));
    };
    if group.delimiter() != proc_macro2::Delimiter::Bracket {
        return Err(wrong(&value));
    }
    let fields = Punctuated::<LitStr, Token![,]>::parse_terminated
        .parse2(group.stream())
        .map_err(|e| {
            syn::Error::new(
                e.span(),
                "`unique_by` lists field names as string literals: write `unique_by = [\"order_id\", \"shop_id\"]`",
            )
        })?;
    Ok(UniqueBy::Fields {
        list_span: group.span(),
        fields: fields.into_iter().collect(),
    })
}

/// Parses the item the attribute is on. Returns `None` (with an error) when it is not a
/// struct, enum or union: `#[acidic_job]` on a function, an impl, a module, ...
pub(crate) fn parse_item(input: TokenStream, cx: &mut Ctxt) -> Option<DeriveInput> {
    match syn::parse2::<DeriveInput>(input.clone()) {
        Ok(item) => Some(item),
        Err(_) => {
            let item_keyword = |input: ParseStream<'_>| -> syn::Result<TokenTree> {
                input.call(syn::Attribute::parse_outer)?;
                input.parse::<syn::Visibility>()?;
                let keyword = input.parse()?;
                input.parse::<TokenStream>()?;
                Ok(keyword)
            };
            let (span, found) = match item_keyword.parse2(input) {
                Ok(tt) => (tt.span(), format!(", not on `{tt}`")),
                Err(e) => (e.span(), String::new()),
            };
            cx.error_at(
                span,
                format!(
                    "`#[acidic_job]` goes on a struct declaration{found}: the struct's fields are the arguments of the job's runs"
                ),
            );
            None
        }
    }
}

/// Reads the `#[serde(...)]` attributes that decide the serialised names of the named fields.
/// Only the simple forms are understood; `check` rejects `unique_by` on the rest.
pub(crate) fn serde_fields(item: &DeriveInput) -> SerdeFields {
    let syn::Data::Struct(data) = &item.data else {
        return SerdeFields::default();
    };
    let fields = data
        .fields
        .iter()
        .filter_map(|f| {
            let name = f.ident.as_ref()?.unraw().to_string();
            Some((name, field_serde_name(&f.attrs)))
        })
        .collect();
    SerdeFields {
        rename_all: !serde_keys(&item.attrs, "rename_all").is_empty(),
        fields,
    }
}

fn field_serde_name(attrs: &[syn::Attribute]) -> SerdeName {
    for unsupported in ["flatten", "skip", "skip_serializing"] {
        if !serde_keys(attrs, unsupported).is_empty() {
            return SerdeName::Unsupported(unsupported.to_owned());
        }
    }
    match serde_keys(attrs, "rename").first() {
        None => SerdeName::Same,
        Some(Some(name)) => SerdeName::Renamed(name.clone()),
        Some(None) => SerdeName::Unsupported("rename(...)".to_owned()),
    }
}

/// Each occurrence of `key` in `#[serde(...)]` attributes: `Some(value)` for `key = "value"`,
/// `None` for any other form (`key`, `key(...)`).
fn serde_keys(attrs: &[syn::Attribute], key: &str) -> Vec<Option<String>> {
    let mut found = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let syn::Meta::List(list) = &attr.meta else {
            continue;
        };
        let tokens: Vec<TokenTree> = list.tokens.clone().into_iter().collect();
        for (i, tt) in tokens.iter().enumerate() {
            let TokenTree::Ident(ident) = tt else {
                continue;
            };
            if ident != key {
                continue;
            }
            let value = match (tokens.get(i + 1), tokens.get(i + 2)) {
                (Some(TokenTree::Punct(eq)), Some(TokenTree::Literal(lit)))
                    if eq.as_char() == '=' =>
                {
                    syn::parse2::<LitStr>(TokenTree::Literal(lit.clone()).into())
                        .ok()
                        .map(|s| s.value())
                }
                _ => None,
            };
            found.push(value);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn args(tokens: TokenStream) -> (JobAttr, Vec<String>) {
        let mut cx = Ctxt::new();
        let attr = parse_args(tokens, &mut cx);
        (attr, cx.messages())
    }

    #[test]
    fn parses_every_option_into_typed_values() {
        let (attr, errors) = args(quote!(
            kind = "orders.fulfill",
            queue = "orders",
            priority = -7,
            max_attempts = 8,
            unique_by = ["order_id", "shop_id"],
            backoff_base_ms = 250,
            backoff_max_ms = 60000,
        ));
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(attr.kind.unwrap().value(), "orders.fulfill");
        assert_eq!(attr.queue.unwrap().value(), "orders");
        assert_eq!(attr.priority.unwrap().value, -7);
        assert_eq!(attr.max_attempts.unwrap().value, 8);
        assert_eq!(attr.backoff_base_ms.unwrap().value, 250);
        assert_eq!(attr.backoff_max_ms.unwrap().value, 60000);
        match attr.unique_by.unwrap() {
            UniqueBy::Fields { fields, .. } => {
                let names: Vec<_> = fields.iter().map(LitStr::value).collect();
                assert_eq!(names, ["order_id", "shop_id"]);
            }
            other => panic!("expected fields, got {other:?}"),
        }
    }

    #[test]
    fn empty_arguments_are_all_defaults() {
        let (attr, errors) = args(quote!());
        assert!(errors.is_empty());
        assert!(attr.kind.is_none() && attr.unique_by.is_none() && attr.priority.is_none());
    }

    #[test]
    fn unique_by_strings() {
        let (attr, _) = args(quote!(unique_by = "args"));
        assert!(matches!(attr.unique_by.unwrap(), UniqueBy::Args));
        let (attr, _) = args(quote!(unique_by = "job_id"));
        assert!(matches!(attr.unique_by.unwrap(), UniqueBy::JobId));
    }

    #[test]
    fn unknown_key_lists_the_valid_ones() {
        let (_, errors) = args(quote!(queu = "mail"));
        assert_eq!(
            errors,
            [
                "unknown option `queu`: valid options are `kind`, `queue`, `priority`, `max_attempts`, `unique_by`, `backoff_base_ms`, `backoff_max_ms`"
            ]
        );
    }

    #[test]
    fn wrong_value_types_say_what_is_expected() {
        let (_, errors) = args(quote!(max_attempts = "5", queue = 3, priority = 40000));
        assert_eq!(
            errors,
            [
                "`max_attempts` expects an integer from 1 to 4294967295, not a string: write `max_attempts = 5`",
                "`queue` expects a string literal, not an integer: write `queue = \"mail\"`",
                "`priority` expects an integer from -32768 to 32767: write `priority = 10`",
            ]
        );
    }

    #[test]
    fn negative_unsigned_is_a_wrong_value() {
        let (attr, errors) = args(quote!(backoff_base_ms = -1));
        assert!(attr.backoff_base_ms.is_none());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("`backoff_base_ms` expects an integer"));
    }

    #[test]
    fn duplicate_key_is_named_and_first_value_kept() {
        let (attr, errors) = args(quote!(queue = "a", queue = "b"));
        assert_eq!(attr.queue.unwrap().value(), "a");
        assert_eq!(
            errors,
            ["duplicate option `queue`: each option may be given once; remove this one"]
        );
    }

    #[test]
    fn unknown_unique_by_value() {
        let (_, errors) = args(quote!(unique_by = "fields"));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("unknown `unique_by` value \"fields\""));
    }

    #[test]
    fn missing_value_and_missing_equals() {
        let (_, errors) = args(quote!(queue, priority =));
        assert_eq!(
            errors,
            [
                "option `queue` needs a value: write `queue = \"mail\"`",
                "missing value after `priority =`: write `priority = 10`",
            ]
        );
    }

    #[test]
    fn all_errors_are_collected() {
        let (attr, errors) = args(quote!(nope = 1, queue = 1, unique_by = "x", queue = "a"));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(attr.queue.unwrap().value(), "a");
    }

    #[test]
    fn serde_names_of_fields() {
        let item: DeriveInput = syn::parse2(quote!(
            #[derive(Serialize)]
            struct J {
                plain: i64,
                #[serde(default, rename = "orderId")]
                order_id: i64,
                #[serde(rename(serialize = "a", deserialize = "b"))]
                split: i64,
                #[serde(flatten)]
                rest: Extra,
                r#type: String,
            }
        ))
        .unwrap();
        let names = serde_fields(&item);
        assert!(!names.rename_all);
        assert_eq!(names.get("plain"), Some(&SerdeName::Same));
        assert_eq!(
            names.get("order_id"),
            Some(&SerdeName::Renamed("orderId".into()))
        );
        assert_eq!(
            names.get("split"),
            Some(&SerdeName::Unsupported("rename(...)".into()))
        );
        assert_eq!(
            names.get("rest"),
            Some(&SerdeName::Unsupported("flatten".into()))
        );
        assert_eq!(names.get("type"), Some(&SerdeName::Same));
        let item: DeriveInput = syn::parse2(quote!(
            #[serde(rename_all = "camelCase")]
            struct K {
                a: i64,
            }
        ))
        .unwrap();
        assert!(serde_fields(&item).rename_all);
    }

    #[test]
    fn attribute_on_a_function_is_rejected() {
        let mut cx = Ctxt::new();
        assert!(
            parse_item(
                quote!(
                    #[inline]
                    pub fn run() {}
                ),
                &mut cx
            )
            .is_none()
        );
        assert_eq!(
            cx.messages(),
            [
                "`#[acidic_job]` goes on a struct declaration, not on `fn`: the struct's fields are the arguments of the job's runs"
            ]
        );
    }
}
