//! `#[derive(Object)]` for h5pom: maps a struct with named fields to an HDF5 group.
//!
//! Container attributes: `#[h5pom(tag = "…")]` (the stored type tag, default the struct's
//! name), `#[h5pom(crate = "path")]` (where the h5pom API lives, default `::h5pom`),
//! `#[h5pom(ext = "Name")]` (name of the generated handle extension trait, default
//! `<Struct>Ext`), `#[h5pom(no_ext)]`.
//!
//! Field attributes: `#[h5pom(rename = "…")]`, `#[h5pom(default)]` (a field missing from the
//! file takes `Default::default()`), `#[h5pom(skip)]` (not persisted; `Default` on load),
//! `#[h5pom(compression = "lz4")]` (array options of the field: `none`, `deflate[:1-9]`,
//! `lz4`, `zstd[:LEVEL]`; the file's default otherwise), `#[h5pom(chunk = "64,3")]` (its chunk
//! shape), `#[h5pom(entity)]` (an external handle with `to_bits`/`try_from_bits`, stored as a
//! persistent id through the context's reference map). Fields spelled `Entity` or
//! `Option<Entity>` are treated as `entity` automatically.

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Stored through `h5pom::Field`.
    Field,
    /// An ECS `Entity` (or any type with `to_bits`/`try_from_bits`), stored as a persistent id.
    Entity,
    /// `Option<Entity>`.
    OptEntity,
}

struct FieldSpec {
    ident: Ident,
    ty: Type,
    name: String,
    default: bool,
    skip: bool,
    kind: Kind,
    /// `#[h5pom(compression = "…")]`: array options of this field.
    compression: Option<String>,
    /// `#[h5pom(chunk = "a,b,c")]`: chunk shape of this field.
    chunk: Option<Vec<usize>>,
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

/// The `T` of `Option<T>`, if `ty` is spelled as an `Option`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let seg = last_segment(ty)?;
    if seg.ident != "Option" {
        return None;
    }
    match &seg.arguments {
        syn::PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first() {
            Some(syn::GenericArgument::Type(t)) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn is_entity(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "Entity" && s.arguments.is_empty())
}

fn kind_of(ty: &Type, forced: bool) -> Kind {
    if is_entity(ty) {
        Kind::Entity
    } else if option_inner(ty).is_some_and(is_entity) {
        Kind::OptEntity
    } else if forced {
        if option_inner(ty).is_some() {
            Kind::OptEntity
        } else {
            Kind::Entity
        }
    } else {
        Kind::Field
    }
}

fn valid_compression(s: &str) -> bool {
    let (name, level) = match s.split_once(':') {
        Some((n, l)) => (n, Some(l)),
        None => (s, None),
    };
    match (name, level) {
        ("none" | "lz4", None) => true,
        ("deflate" | "gzip", None) => true,
        ("deflate" | "gzip", Some(l)) => l.parse::<u8>().is_ok_and(|l| (1..=9).contains(&l)),
        ("zstd", None) => true,
        ("zstd", Some(l)) => l.parse::<i32>().is_ok(),
        _ => false,
    }
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
            kind: Kind::Field,
            compression: None,
            chunk: None,
        };
        let mut forced_entity = false;
        for attr in f.attrs.iter().filter(|a| a.path().is_ident("h5pom")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let v: LitStr = meta.value()?.parse()?;
                    spec.name = v.value();
                } else if meta.path.is_ident("default") {
                    spec.default = true;
                } else if meta.path.is_ident("skip") {
                    spec.skip = true;
                } else if meta.path.is_ident("entity") {
                    forced_entity = true;
                } else if meta.path.is_ident("compression") {
                    let v: LitStr = meta.value()?.parse()?;
                    if !valid_compression(&v.value()) {
                        return Err(syn::Error::new(
                            v.span(),
                            "expected none, deflate[:1-9], lz4 or zstd[:LEVEL]",
                        ));
                    }
                    spec.compression = Some(v.value());
                } else if meta.path.is_ident("chunk") {
                    let v: LitStr = meta.value()?.parse()?;
                    let dims: Option<Vec<usize>> = v
                        .value()
                        .split(',')
                        .map(|d| d.trim().parse::<usize>().ok().filter(|&n| n > 0))
                        .collect();
                    spec.chunk = Some(dims.ok_or_else(|| {
                        syn::Error::new(v.span(), "expected positive integers separated by commas")
                    })?);
                } else {
                    return Err(meta.error(
                        "expected `rename`, `default`, `skip`, `entity`, `compression` or `chunk`",
                    ));
                }
                Ok(())
            })?;
        }
        spec.kind = kind_of(&spec.ty, forced_entity);
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
    let saves: Vec<Tokens> = stored
        .iter()
        .map(|f| {
            let (ident, name) = (&f.ident, &f.name);
            match f.kind {
                Kind::Field if f.compression.is_some() || f.chunk.is_some() => {
                    let spec = match &f.compression {
                        Some(c) => quote! { ::core::option::Option::Some(#c) },
                        None => quote! { ::core::option::Option::None },
                    };
                    let chunk = match &f.chunk {
                        Some(c) => quote! { ::core::option::Option::Some(&[#(#c),*][..]) },
                        None => quote! { ::core::option::Option::None },
                    };
                    quote! { cx.field_with(#name, &self.#ident, #spec, #chunk)?; }
                }
                Kind::Field => quote! { cx.field(#name, &self.#ident)?; },
                Kind::Entity => quote! {
                    cx.save_ref(#name, ::core::option::Option::Some(self.#ident.to_bits()))?;
                },
                Kind::OptEntity => quote! {
                    cx.save_ref(#name, self.#ident.map(|e| e.to_bits()))?;
                },
            }
        })
        .collect();
    let changed: Vec<Tokens> = stored
        .iter()
        .zip(&saves)
        .map(|(f, save)| {
            let ident = &f.ident;
            match f.kind {
                Kind::Field => quote! {
                    if !#krate::Field::same(&self.#ident, &old.#ident) { #save }
                },
                Kind::Entity | Kind::OptEntity => quote! {
                    if self.#ident != old.#ident { #save }
                },
            }
        })
        .collect();

    let loads = fields.iter().map(|f| {
        let (ident, name, ty) = (&f.ident, &f.name, &f.ty);
        let dangling = quote! {
            || #krate::Error::DanglingRef { path: cx.path().to_owned(), field: #name.to_owned() }
        };
        if !f.skip && f.kind == Kind::Entity {
            return quote! {
                #ident: {
                    let bits = cx.load_ref(#name)?.ok_or_else(|| #krate::Error::MissingField {
                        path: cx.path().to_owned(),
                        field: #name.to_owned(),
                    })?;
                    <#ty>::try_from_bits(bits).ok_or_else(#dangling)?
                }
            };
        }
        if !f.skip && f.kind == Kind::OptEntity {
            let inner = option_inner(ty).cloned().unwrap_or_else(|| ty.clone());
            return quote! {
                #ident: match cx.load_ref(#name)? {
                    ::core::option::Option::None => ::core::option::Option::None,
                    ::core::option::Option::Some(bits) => ::core::option::Option::Some(
                        <#inner>::try_from_bits(bits).ok_or_else(#dangling)?
                    ),
                }
            };
        }
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
            fn save_fields<'h5pom_d>(&'h5pom_d self, cx: &mut #krate::SaveCtx<'_, 'h5pom_d>) -> #krate::Result<()> {
                #(#saves)*
                ::core::result::Result::Ok(())
            }
            fn save_changed<'h5pom_d>(&'h5pom_d self, old: &Self, cx: &mut #krate::SaveCtx<'_, 'h5pom_d>) -> #krate::Result<()> {
                #(#changed)*
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
            for f in stored.iter().filter(|f| f.kind == Kind::Field) {
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
