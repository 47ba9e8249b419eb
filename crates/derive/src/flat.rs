//! `#[derive(Field)]`: plain structs flattened into their owner, and enums.

use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, Path, spanned::Spanned};

use crate::{FieldSpec, Kind, container, field_specs, mentions_shared, respan, with_bounds};

/// Refuses what flattened fields do not support, naming the field.
fn check(specs: &[FieldSpec]) -> syn::Result<()> {
    for f in specs {
        if f.kind != Kind::Field && !f.skip {
            return Err(syn::Error::new(
                f.ident.span(),
                format!(
                    "field `{}`: entity fields are supported in #[derive(Object)] types, not in \
                     nested #[derive(Field)] types",
                    f.ident
                ),
            ));
        }
        if f.compression.is_some() || f.chunk.is_some() {
            return Err(syn::Error::new(
                f.ident.span(),
                format!(
                    "field `{}`: `compression` and `chunk` apply to fields of #[derive(Object)] \
                     types only",
                    f.ident
                ),
            ));
        }
    }
    Ok(())
}

/// `<name>.<field>`.
fn sub(name: &str) -> Tokens {
    quote! { &::std::format!("{}.{}", name, #name) }
}

/// Reads the stored fields of `specs` into locals named after them.
fn loads(krate: &Path, specs: &[FieldSpec]) -> Vec<Tokens> {
    specs
        .iter()
        .filter(|f| !f.skip)
        .map(|f| {
            let (ident, ty, n) = (&f.ident, &f.ty, sub(&f.name));
            quote! { let #ident: ::core::option::Option<#ty> = #krate::Field::load(cx, #n)?; }
        })
        .collect()
}

/// The value of each field from its local (read by [`loads`]).
fn resolve(krate: &Path, specs: &[FieldSpec]) -> Vec<Tokens> {
    specs
        .iter()
        .map(|f| {
            let (ident, ty, n) = (&f.ident, &f.ty, sub(&f.name));
            if f.skip {
                quote! { ::core::default::Default::default() }
            } else if f.default {
                quote! { #ident.unwrap_or_default() }
            } else {
                quote! {
                    match #ident {
                        ::core::option::Option::Some(v) => v,
                        ::core::option::Option::None => <#ty as #krate::Field>::if_missing()
                            .ok_or_else(|| #krate::Error::MissingField {
                                path: cx.path().to_owned(),
                                field: ::std::string::String::from(#n),
                            })?,
                    }
                }
            }
        })
        .collect()
}

/// The value of each field when the whole value is missing (`None` if one has no default).
fn missing(krate: &Path, specs: &[FieldSpec]) -> Vec<Tokens> {
    specs
        .iter()
        .map(|f| {
            let ty = &f.ty;
            if f.skip || f.default {
                quote! { ::core::default::Default::default() }
            } else {
                quote! { <#ty as #krate::Field>::if_missing()? }
            }
        })
        .collect()
}

/// The pattern binding a variant's or struct's stored fields by their idents.
fn pattern(fields: &Fields, specs: &[FieldSpec]) -> Tokens {
    match fields {
        Fields::Named(_) => {
            let ids = specs.iter().filter(|f| !f.skip).map(|f| &f.ident);
            quote! { { #(#ids,)* .. } }
        }
        Fields::Unnamed(_) => {
            let ids = specs.iter().map(|f| {
                if f.skip {
                    quote! { _ }
                } else {
                    let id = &f.ident;
                    quote! { #id }
                }
            });
            quote! { ( #(#ids),* ) }
        }
        Fields::Unit => Tokens::new(),
    }
}

/// The constructor of a variant or struct from resolved values.
fn construct(fields: &Fields, specs: &[FieldSpec], values: &[Tokens]) -> Tokens {
    match fields {
        Fields::Named(_) => {
            let ids = specs.iter().map(|f| &f.ident);
            quote! { { #(#ids: #values),* } }
        }
        Fields::Unnamed(_) => quote! { ( #(#values),* ) },
        Fields::Unit => Tokens::new(),
    }
}

pub(crate) fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let krate = container(input)?.krate;
    match &input.data {
        Data::Struct(s) => expand_struct(input, &krate, &s.fields),
        Data::Enum(e) => {
            let variants: Vec<(&syn::Variant, Vec<FieldSpec>)> = e
                .variants
                .iter()
                .map(|v| Ok((v, field_specs(&v.fields)?)))
                .collect::<syn::Result<_>>()?;
            if variants.is_empty() {
                return Err(syn::Error::new(
                    input.span(),
                    "#[derive(Field)] needs an enum with at least one variant",
                ));
            }
            for (_, specs) in &variants {
                check(specs)?;
            }
            if variants
                .iter()
                .all(|(v, _)| matches!(v.fields, Fields::Unit))
            {
                Ok(expand_unit_enum(input, &krate, &variants))
            } else {
                Ok(expand_data_enum(input, &krate, &variants))
            }
        }
        Data::Union(_) => Err(syn::Error::new(
            input.span(),
            "#[derive(Field)] supports structs and enums",
        )),
    }
}

fn bounds(krate: &Path, specs: &[&FieldSpec]) -> Vec<Tokens> {
    specs
        .iter()
        .filter(|f| !f.skip && !mentions_shared(&f.ty))
        .map(|f| {
            let fty = &f.ty;
            let k = respan(quote! { #krate }, fty.span());
            quote::quote_spanned! {fty.span()=> #fty: #k::Field }
        })
        .collect()
}

fn expand_struct(input: &DeriveInput, krate: &Path, fields: &Fields) -> syn::Result<Tokens> {
    let specs = field_specs(fields)?;
    check(&specs)?;
    let ty = &input.ident;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let where_g = with_bounds(where_g, &bounds(krate, &specs.iter().collect::<Vec<_>>()));
    let stored: Vec<&FieldSpec> = specs.iter().filter(|f| !f.skip).collect();
    let accessors: Vec<Tokens> = stored
        .iter()
        .map(|f| match fields {
            Fields::Unnamed(_) => {
                let i = syn::Index::from(f.name.parse::<usize>().unwrap_or_default());
                quote! { #i }
            }
            _ => {
                let id = &f.ident;
                quote! { #id }
            }
        })
        .collect();
    let names: Vec<Tokens> = stored.iter().map(|f| sub(&f.name)).collect();
    let loads = loads(krate, &specs);
    let locals: Vec<&syn::Ident> = stored.iter().map(|f| &f.ident).collect();
    let values = resolve(krate, &specs);
    let build = construct(fields, &specs, &values);
    let absent = construct(fields, &specs, &missing(krate, &specs));
    let all_missing = if locals.is_empty() {
        quote! { false }
    } else {
        quote! { #(#locals.is_none())&&* }
    };
    let tys: Vec<&syn::Type> = stored.iter().map(|f| &f.ty).collect();
    Ok(quote! {
        impl #impl_g #krate::Field for #ty #ty_g #where_g {
            // A flattened struct fits a row when each of its fields does.
            const COLUMNAR: bool = true #( && <#tys as #krate::Field>::COLUMNAR )*;
            fn save<'h5pom_d>(&'h5pom_d self, cx: &mut #krate::SaveCtx<'_, 'h5pom_d>, name: &str) -> #krate::Result<()> {
                #( #krate::Field::save(&self.#accessors, cx, #names)?; )*
                ::core::result::Result::Ok(())
            }
            fn load(cx: &mut #krate::LoadCtx<'_>, name: &str) -> #krate::Result<::core::option::Option<Self>> {
                #(#loads)*
                if #all_missing {
                    return ::core::result::Result::Ok(::core::option::Option::None);
                }
                ::core::result::Result::Ok(::core::option::Option::Some(Self #build))
            }
            fn same(&self, other: &Self) -> bool {
                true #( && #krate::Field::same(&self.#accessors, &other.#accessors) )*
            }
            fn if_missing() -> ::core::option::Option<Self> {
                ::core::option::Option::Some(Self #absent)
            }
        }
    })
}

/// The error text listing an enum's variants.
fn allowed(variants: &[(&syn::Variant, Vec<FieldSpec>)]) -> String {
    let names: Vec<String> = variants
        .iter()
        .map(|(v, _)| format!("{:?}", v.ident.to_string()))
        .collect();
    format!("one of the variants {}", names.join(", "))
}

fn expand_unit_enum(
    input: &DeriveInput,
    krate: &Path,
    variants: &[(&syn::Variant, Vec<FieldSpec>)],
) -> Tokens {
    let ty = &input.ident;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let idents: Vec<&syn::Ident> = variants.iter().map(|(v, _)| &v.ident).collect();
    let names: Vec<String> = idents.iter().map(|i| i.to_string()).collect();
    let allowed = allowed(variants);
    let tname = ty.to_string();
    quote! {
        impl #impl_g #krate::Scalar for #ty #ty_g #where_g {
            const TYPE_NAME: &'static str = #tname;
            fn to_value(&self) -> #krate::Value {
                #krate::Value::Str(::std::string::String::from(match self {
                    #(Self::#idents => #names,)*
                }))
            }
            fn from_value(v: #krate::Value) -> ::core::result::Result<Self, #krate::ScalarError> {
                match v {
                    #krate::Value::Str(s) => match s.as_str() {
                        #(#names => ::core::result::Result::Ok(Self::#idents),)*
                        _ => ::core::result::Result::Err(#krate::ScalarError::Mismatch {
                            expected: #allowed,
                            found: ::std::format!("{:?}", s),
                        }),
                    },
                    other => ::core::result::Result::Err(#krate::ScalarError::Mismatch {
                        expected: #allowed,
                        found: other.type_name(),
                    }),
                }
            }
            fn same(&self, other: &Self) -> bool {
                ::core::matches!((self, other), #((Self::#idents, Self::#idents))|*)
            }
        }
    }
}

fn expand_data_enum(
    input: &DeriveInput,
    krate: &Path,
    variants: &[(&syn::Variant, Vec<FieldSpec>)],
) -> Tokens {
    let ty = &input.ident;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let all: Vec<&FieldSpec> = variants.iter().flat_map(|(_, s)| s.iter()).collect();
    let where_g = with_bounds(where_g, &bounds(krate, &all));
    let allowed = allowed(variants);
    let mut saves = Vec::new();
    let mut load_arms = Vec::new();
    let mut sames = Vec::new();
    for (v, specs) in variants {
        let id = &v.ident;
        let vname = id.to_string();
        let pat = pattern(&v.fields, specs);
        let stored: Vec<&FieldSpec> = specs.iter().filter(|f| !f.skip).collect();
        let idents: Vec<&syn::Ident> = stored.iter().map(|f| &f.ident).collect();
        let names: Vec<Tokens> = stored.iter().map(|f| sub(&f.name)).collect();
        // Fields of the other variants, removed so the group holds only this variant's.
        let mut others: Vec<String> = variants
            .iter()
            .flat_map(|(_, s)| s.iter().filter(|f| !f.skip).map(|f| f.name.clone()))
            .filter(|n| !stored.iter().any(|f| &f.name == n))
            .collect();
        others.sort();
        others.dedup();
        let others: Vec<Tokens> = others.iter().map(|n| sub(n)).collect();
        saves.push(quote! {
            Self::#id #pat => {
                cx.put_value_raw(name, #krate::Value::Str(::std::string::String::from(#vname)))?;
                #( #krate::Field::save(#idents, cx, #names)?; )*
                #( cx.remove_value(#others)?; )*
            }
        });
        let loads = loads(krate, specs);
        let values = resolve(krate, specs);
        let build = construct(&v.fields, specs, &values);
        load_arms.push(quote! {
            #vname => {
                #(#loads)*
                ::core::result::Result::Ok(::core::option::Option::Some(Self::#id #build))
            }
        });
        let a: Vec<syn::Ident> = idents.iter().map(|i| format_ident!("a_{}", i)).collect();
        let b: Vec<syn::Ident> = idents.iter().map(|i| format_ident!("b_{}", i)).collect();
        let (pa, pb) = match &v.fields {
            Fields::Named(_) => (
                quote! { { #(#idents: #a,)* .. } },
                quote! { { #(#idents: #b,)* .. } },
            ),
            Fields::Unnamed(_) => {
                let pa = specs.iter().map(|f| {
                    if f.skip {
                        quote! { _ }
                    } else {
                        let x = format_ident!("a_{}", f.ident);
                        quote! { #x }
                    }
                });
                let pb = specs.iter().map(|f| {
                    if f.skip {
                        quote! { _ }
                    } else {
                        let x = format_ident!("b_{}", f.ident);
                        quote! { #x }
                    }
                });
                (quote! { ( #(#pa),* ) }, quote! { ( #(#pb),* ) })
            }
            Fields::Unit => (Tokens::new(), Tokens::new()),
        };
        sames.push(quote! {
            (Self::#id #pa, Self::#id #pb) => true #( && #krate::Field::same(#a, #b) )*,
        });
    }
    quote! {
        impl #impl_g #krate::Field for #ty #ty_g #where_g {
            fn save<'h5pom_d>(&'h5pom_d self, cx: &mut #krate::SaveCtx<'_, 'h5pom_d>, name: &str) -> #krate::Result<()> {
                if cx.group().is_none() {
                    // One column set per table: a variant's own fields cannot be columns.
                    return ::core::result::Result::Err(#krate::Error::NotColumnar {
                        path: cx.path().to_owned(),
                        field: name.to_owned(),
                    });
                }
                match self {
                    #(#saves)*
                }
                ::core::result::Result::Ok(())
            }
            fn load(cx: &mut #krate::LoadCtx<'_>, name: &str) -> #krate::Result<::core::option::Option<Self>> {
                let tag = match cx.value_raw(name)? {
                    ::core::option::Option::None => return ::core::result::Result::Ok(::core::option::Option::None),
                    ::core::option::Option::Some(#krate::Value::Str(s)) => s,
                    ::core::option::Option::Some(other) => {
                        return ::core::result::Result::Err(#krate::Error::TypeMismatch {
                            path: cx.path().to_owned(),
                            field: name.to_owned(),
                            expected: ::std::string::String::from(#allowed),
                            found: other.type_name(),
                        });
                    }
                };
                match tag.as_str() {
                    #(#load_arms)*
                    _ => ::core::result::Result::Err(#krate::Error::TypeMismatch {
                        path: cx.path().to_owned(),
                        field: name.to_owned(),
                        expected: ::std::string::String::from(#allowed),
                        found: ::std::format!("{:?}", tag),
                    }),
                }
            }
            #[allow(unused_variables)]
            fn same(&self, other: &Self) -> bool {
                match (self, other) {
                    #(#sames)*
                    _ => false,
                }
            }
        }
    }
}
