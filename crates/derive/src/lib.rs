//! `#[derive(Object)]` for h5pom: maps a struct with named fields to an HDF5 group.
//!
//! Container attributes: `#[h5pom(tag = "…")]` (the stored type tag, default the struct's
//! name), `#[h5pom(crate = "path")]` (where the h5pom API lives, default `::h5pom`),
//! `#[h5pom(ext = "Name")]` (name of the generated handle extension trait, default
//! `<Struct>Ext`), `#[h5pom(no_ext)]`.
//!
//! Field attributes: `#[h5pom(rename = "…")]`, `#[h5pom(default)]` (a field missing from the
//! file takes `Default::default()`), `#[h5pom(skip)]` (not persisted; `Default` on load).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::{
    Data, DeriveInput, Fields, Ident, LitStr, Path, Type, parse_macro_input, spanned::Spanned,
};

/// Derives `h5pom::Object` and a `<Struct>Ext` trait of typed field getters and setters on
/// `h5pom::Handle<Struct>`.
#[proc_macro_derive(Object, attributes(h5pom))]
pub fn derive_object(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

struct Container {
    tag: String,
    krate: Path,
    ext: Option<Ident>,
}

struct FieldSpec {
    ident: Ident,
    ty: Type,
    name: String,
    default: bool,
    skip: bool,
}

fn is_valid_key(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn container(input: &DeriveInput) -> syn::Result<Container> {
    let mut c = Container {
        tag: input.ident.to_string(),
        krate: syn::parse_quote!(::h5pom),
        ext: Some(format_ident!("{}Ext", input.ident)),
    };
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("h5pom")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("tag") {
                let v: LitStr = meta.value()?.parse()?;
                if v.value().is_empty() {
                    return Err(meta.error("the type tag must not be empty"));
                }
                c.tag = v.value();
            } else if meta.path.is_ident("crate") {
                let v: LitStr = meta.value()?.parse()?;
                c.krate = v.parse()?;
            } else if meta.path.is_ident("ext") {
                let v: LitStr = meta.value()?.parse()?;
                c.ext = Some(v.parse()?);
            } else if meta.path.is_ident("no_ext") {
                c.ext = None;
            } else {
                return Err(meta.error("expected `tag`, `crate`, `ext` or `no_ext`"));
            }
            Ok(())
        })?;
    }
    Ok(c)
}

fn fields(input: &DeriveInput) -> syn::Result<Vec<FieldSpec>> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.span(),
            "#[derive(Object)] supports structs with named fields only",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new(
            input.span(),
            "#[derive(Object)] supports structs with named fields only",
        ));
    };
    let mut out = Vec::new();
    for f in &named.named {
        let ident = f
            .ident
            .clone()
            .ok_or_else(|| syn::Error::new(f.span(), "unnamed field"))?;
        let mut spec = FieldSpec {
            name: ident.to_string().trim_start_matches("r#").to_owned(),
            ident,
            ty: f.ty.clone(),
            default: false,
            skip: false,
        };
        for attr in f.attrs.iter().filter(|a| a.path().is_ident("h5pom")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let v: LitStr = meta.value()?.parse()?;
                    spec.name = v.value();
                } else if meta.path.is_ident("default") {
                    spec.default = true;
                } else if meta.path.is_ident("skip") {
                    spec.skip = true;
                } else {
                    return Err(meta.error("expected `rename`, `default` or `skip`"));
                }
                Ok(())
            })?;
        }
        if !is_valid_key(&spec.name) {
            return Err(syn::Error::new(
                f.span(),
                format!(
                    "field name {:?} must match [A-Za-z0-9_]+ (use #[h5pom(rename = \"...\")])",
                    spec.name
                ),
            ));
        }
        if out
            .iter()
            .any(|o: &FieldSpec| !o.skip && o.name == spec.name)
            && !spec.skip
        {
            return Err(syn::Error::new(
                f.span(),
                format!("two fields are stored as {:?}", spec.name),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let c = container(input)?;
    let fields = fields(input)?;
    let krate = &c.krate;
    let ty = &input.ident;
    let tag = &c.tag;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let stored: Vec<&FieldSpec> = fields.iter().filter(|f| !f.skip).collect();
    let names: Vec<&str> = stored.iter().map(|f| f.name.as_str()).collect();
    let idents: Vec<&Ident> = stored.iter().map(|f| &f.ident).collect();

    let loads = fields.iter().map(|f| {
        let (ident, name) = (&f.ident, &f.name);
        if f.skip {
            quote! { #ident: ::core::default::Default::default() }
        } else if f.default {
            quote! { #ident: cx.field_or_default(#name)? }
        } else {
            quote! { #ident: cx.field(#name)? }
        }
    });

    let object_impl = quote! {
        impl #impl_g #krate::Object for #ty #ty_g #where_g {
            const TYPE_TAG: &'static str = #tag;
            const FIELDS: &'static [&'static str] = &[#(#names),*];
            fn save_fields(&self, cx: &mut #krate::SaveCtx<'_>) -> #krate::Result<()> {
                #( cx.field(#names, &self.#idents)?; )*
                ::core::result::Result::Ok(())
            }
            fn save_changed(&self, old: &Self, cx: &mut #krate::SaveCtx<'_>) -> #krate::Result<()> {
                #(
                    if !#krate::Field::same(&self.#idents, &old.#idents) {
                        cx.field(#names, &self.#idents)?;
                    }
                )*
                ::core::result::Result::Ok(())
            }
            fn load_fields(cx: &mut #krate::LoadCtx<'_>) -> #krate::Result<Self> {
                ::core::result::Result::Ok(Self { #(#loads),* })
            }
        }
    };

    let ext = match (&c.ext, input.generics.params.is_empty()) {
        (Some(ext), true) => {
            let vis = &input.vis;
            let doc = format!(
                "Typed field access on a stored [`{ty}`] (generated by `#[derive(Object)]`)."
            );
            let mut sigs = Vec::new();
            let mut bodies = Vec::new();
            for f in &stored {
                let (name, fty) = (&f.name, &f.ty);
                let getter = Ident::new(&f.ident.to_string(), Span::call_site());
                let setter = format_ident!("set_{}", f.ident.to_string().trim_start_matches("r#"));
                let gdoc = format!("Reads field `{name}` from the file.");
                let sdoc = format!("Writes field `{name}` to the file (only this field).");
                sigs.push(quote! {
                    #[doc = #gdoc]
                    fn #getter(&self) -> #krate::Result<#fty>;
                    #[doc = #sdoc]
                    fn #setter(&self, value: impl ::core::convert::Into<#fty>) -> #krate::Result<()>;
                });
                bodies.push(quote! {
                    fn #getter(&self) -> #krate::Result<#fty> {
                        self.get::<#fty>(#name)
                    }
                    fn #setter(&self, value: impl ::core::convert::Into<#fty>) -> #krate::Result<()> {
                        let value: #fty = value.into();
                        self.set::<#fty>(#name, &value)
                    }
                });
            }
            quote! {
                #[doc = #doc]
                #vis trait #ext {
                    #(#sigs)*
                }
                impl #ext for #krate::Handle<#ty> {
                    #(#bodies)*
                }
            }
        }
        _ => Tokens::new(),
    };
    Ok(quote! { #object_impl #ext })
}
