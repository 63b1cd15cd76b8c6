//! Code generation of `#[acidic_job]` for a checked item: the item unchanged, plus a `Job`
//! impl inside `const _: () = { ... };`.

use proc_macro2::{Literal, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::{DeriveInput, LitStr};

use super::ast::{JobAttr, SerdeFields, SerdeName, UniqueBy};

pub(crate) fn expand(attr: &JobAttr, item: &DeriveInput, serde: &SerdeFields) -> TokenStream {
    let kind = match &attr.kind {
        Some(kind) => quote!(#kind),
        None => default_kind(item),
    };
    let job_impl = job_impl(item, &kind, &options(attr, serde));
    quote! {
        #item
        const _: () = {
            #job_impl
        };
    }
}

/// The default kind: the type's name, as a string.
pub(crate) fn default_kind(item: &DeriveInput) -> TokenStream {
    let name = LitStr::new(&item.ident.unraw().to_string(), item.ident.span());
    quote!(#name)
}

/// `impl Job for T`. The self type is the user's own identifier, so that the supertrait bounds
/// of `Job` (`Serialize + DeserializeOwned`) fail at the type's name, with serde's note "consider
/// adding `#[derive(serde::Serialize)]`". A separate `assert_serializable::<T>()` would report
/// each missing derive a second time at the same token, so none is emitted.
pub(crate) fn job_impl(
    item: &DeriveInput,
    kind: &TokenStream,
    options: &TokenStream,
) -> TokenStream {
    let ident = &item.ident;
    quote! {
        impl ::acidic_runtime::__private::Job for #ident {
            const KIND: &'static str = #kind;
            const OPTIONS: ::acidic_runtime::__private::JobOptions = #options;
        }
    }
}

/// The `JobOptions` value: only the given options, the rest from `JobOptions::DEFAULT`.
/// `unique_by` fields are emitted under their serialised names.
fn options(attr: &JobAttr, serde: &SerdeFields) -> TokenStream {
    let p = quote!(::acidic_runtime::__private);
    let mut fields = Vec::new();
    if let Some(queue) = &attr.queue {
        fields.push(quote!(queue: #queue,));
    }
    if let Some(priority) = &attr.priority {
        let v = Literal::i16_suffixed(priority.value);
        fields.push(quote!(priority: #v,));
    }
    if let Some(max) = &attr.max_attempts {
        let v = Literal::u32_suffixed(max.value);
        fields.push(quote!(max_attempts: #v,));
    }
    if let Some(unique_by) = &attr.unique_by {
        let value = match unique_by {
            UniqueBy::JobId => quote!(#p::UniqueBy::JobId),
            UniqueBy::Args => quote!(#p::UniqueBy::Args),
            UniqueBy::Fields { fields, .. } => {
                let names = fields.iter().map(|f| match serde.get(&f.value()) {
                    Some(SerdeName::Renamed(name)) => LitStr::new(name, f.span()),
                    _ => f.clone(),
                });
                quote!(#p::UniqueBy::Fields(&[#(#names),*]))
            }
        };
        fields.push(quote!(unique_by: #value,));
    }
    if attr.backoff_base_ms.is_some() || attr.backoff_max_ms.is_some() {
        let millis = |v: u64| {
            let v = Literal::u64_suffixed(v);
            quote!(#p::core::time::Duration::from_millis(#v))
        };
        let base = attr.backoff_base_ms.as_ref().map(|b| {
            let d = millis(b.value);
            quote!(base: #d,)
        });
        let max = attr.backoff_max_ms.as_ref().map(|m| {
            let d = millis(m.value);
            quote!(max: #d,)
        });
        // `..DEFAULT` only where a field is left out (clippy's `needless_update` otherwise).
        let rest = (base.is_none() || max.is_none()).then(|| quote!(..#p::Backoff::DEFAULT));
        fields.push(quote!(backoff: #p::Backoff { #base #max #rest },));
    }
    /// queue, priority, max_attempts, unique_by, backoff.
    const ALL_FIELDS: usize = 5;
    if fields.is_empty() {
        quote!(#p::JobOptions::DEFAULT)
    } else if fields.len() == ALL_FIELDS {
        quote!(#p::JobOptions { #(#fields)* })
    } else {
        quote!(#p::JobOptions { #(#fields)* ..#p::JobOptions::DEFAULT })
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::ctxt::Ctxt;
    use crate::job::parse::parse_args;

    #[test]
    fn only_given_options_are_generated() {
        let mut cx = Ctxt::new();
        let attr = parse_args(quote!(queue = "mail", backoff_max_ms = 9), &mut cx);
        let text = options(&attr, &SerdeFields::default()).to_string();
        assert!(text.contains("queue : \"mail\""), "{text}");
        assert!(text.contains("max : :: acidic_runtime :: __private :: core :: time :: Duration :: from_millis (9u64)"), "{text}");
        assert!(!text.contains("priority"), "{text}");
        assert!(text.ends_with(":: JobOptions :: DEFAULT }"), "{text}");
    }

    #[test]
    fn no_options_is_the_default_value() {
        let attr = JobAttr::default();
        assert_eq!(
            options(&attr, &SerdeFields::default()).to_string(),
            quote!(::acidic_runtime::__private::JobOptions::DEFAULT).to_string()
        );
    }
}
