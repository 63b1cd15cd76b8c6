//! What `#[acidic_job]` emits when the invocation has errors: the item unchanged plus a `Job`
//! impl with the default options, so that the rest of the crate (`steps!`, registration,
//! `awaits`) still type-checks and only the real mistakes are reported.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput};

use super::expand::{default_kind, job_impl};

pub(crate) fn expand(item: &DeriveInput) -> TokenStream {
    // A generic type or a union cannot get a meaningful impl; its error is already reported.
    let implementable = item.generics.params.is_empty()
        && item.generics.where_clause.is_none()
        && !matches!(item.data, Data::Union(_));
    if !implementable {
        return quote!(#item);
    }
    let job_impl = job_impl(
        item,
        &default_kind(item),
        &quote!(::acidic_runtime::__private::JobOptions::DEFAULT),
    );
    quote! {
        #item
        const _: () = {
            #job_impl
        };
    }
}
