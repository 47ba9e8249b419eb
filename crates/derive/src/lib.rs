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
//! `lz4`, `zstd[:LEVEL]`; the file's default otherwise; checked by `h5pom_rules`, as the
//! store checks it), `#[h5pom(chunk = "64,3")]` (its chunk
//! shape), `#[h5pom(entity)]` (an external handle with `to_bits`/`try_from_bits`, stored as a
//! persistent id through the context's reference map). Fields spelled `Entity` or
//! `Option<Entity>` are treated as `entity` automatically, and so are `Vec<Entity>`,
//! `[Entity; N]`, `BTreeMap<String, Entity>` and `HashMap<String, Entity>` (with
//! `#[h5pom(entity)]`, whatever the element type is called). `#[h5pom(dataset)]` on a
//! `Vec` of numbers stores it as one 1-D dataset instead of one attribute per item.
//!
//! `#[derive(Field)]` makes a plain struct or an enum a field type (see [`derive@Field`]).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote, quote_spanned};
use syn::{
    Data, DeriveInput, Fields, Ident, LitStr, Path, Type, parse_macro_input, spanned::Spanned,
};

mod flat;

/// Derives `h5pom::Field` for a plain struct (stored flattened into its owner, each inner field
/// under `<name>.<inner>`) or an enum (unit variants: the variant's name as a string, like a
/// scalar; variants with data: the name in `<name>`, the variant's fields as
/// `<name>.<field>`, groups only). The field attributes of `#[derive(Object)]` apply
/// (`rename`, `default`, `skip`, `compression`, `chunk`).
#[proc_macro_derive(Field, attributes(h5pom))]
pub fn derive_field(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match flat::expand(&input) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

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
    /// `Vec<Entity>`: a list family of persistent ids.
    EntityList,
    /// `[Entity; N]`: one 1-D attribute of persistent ids.
    EntityArray,
    /// `BTreeMap<String, Entity>` / `HashMap<String, Entity>`: a dict family of ids.
    EntityMap,
    /// `#[h5pom(dataset)]` on a `Vec` of numbers: one 1-D dataset.
    Dataset,
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

/// The type arguments of `ty`'s last path segment.
fn type_args(ty: &Type) -> Vec<&Type> {
    match last_segment(ty).map(|s| &s.arguments) {
        Some(syn::PathArguments::AngleBracketed(a)) => a
            .args
            .iter()
            .filter_map(|g| match g {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The element type of a container of entities (`Vec<E>`, `[E; N]`, a map of `String` to
/// `E`), with its kind, if `ty` is one (`forced`: the element is an entity whatever its name).
fn entity_container(ty: &Type, forced: bool) -> Option<(Kind, &Type)> {
    let ok = |t: &Type| forced || is_entity(t);
    if let Type::Array(a) = ty {
        return ok(&a.elem).then_some((Kind::EntityArray, &*a.elem));
    }
    let seg = last_segment(ty)?;
    let args = type_args(ty);
    match (seg.ident.to_string().as_str(), &args[..]) {
        ("Vec", [e]) if ok(e) => Some((Kind::EntityList, e)),
        ("BTreeMap" | "HashMap", [_, e]) if ok(e) => Some((Kind::EntityMap, e)),
        _ => None,
    }
}

fn kind_of(ty: &Type, forced: bool) -> Kind {
    if let Some((kind, _)) = entity_container(ty, forced) {
        kind
    } else if is_entity(ty) {
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
    let Fields::Named(_) = &data.fields else {
        return Err(syn::Error::new(
            input.span(),
            "#[derive(Object)] supports structs with named fields only",
        ));
    };
    field_specs(&data.fields)
}

/// The specs of named or tuple fields (a tuple field `i` is named `fi` in code and `"i"` on
/// disk).
fn field_specs(fields: &Fields) -> syn::Result<Vec<FieldSpec>> {
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let (ident, name) = match &f.ident {
            Some(ident) => (
                ident.clone(),
                ident.to_string().trim_start_matches("r#").to_owned(),
            ),
            None => (format_ident!("f{i}"), i.to_string()),
        };
        let mut spec = FieldSpec {
            name,
            ident,
            ty: f.ty.clone(),
            default: false,
            skip: false,
            kind: Kind::Field,
            compression: None,
            chunk: None,
        };
        let mut forced_entity = false;
        let mut dataset = false;
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
                } else if meta.path.is_ident("dataset") {
                    dataset = true;
                } else if meta.path.is_ident("compression") {
                    let v: LitStr = meta.value()?.parse()?;
                    // The store parses the same spec with the same rule at run time.
                    if let Err(e) = h5pom_rules::parse_compression(&v.value()) {
                        return Err(syn::Error::new(
                            v.span(),
                            format!("field `{}`: {e}", spec.ident),
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
                        "expected `rename`, `default`, `skip`, `entity`, `dataset`, `compression` \
                         or `chunk`",
                    ));
                }
                Ok(())
            })?;
        }
        spec.kind = kind_of(&spec.ty, forced_entity);
        if dataset {
            let is_vec = last_segment(&spec.ty).is_some_and(|s| s.ident == "Vec")
                && type_args(&spec.ty).len() == 1;
            if spec.kind != Kind::Field || !is_vec {
                return Err(syn::Error::new(
                    f.span(),
                    format!(
                        "field `{}`: #[h5pom(dataset)] applies to a `Vec` of numbers",
                        spec.ident
                    ),
                ));
            }
            spec.kind = Kind::Dataset;
        }
        if let Err(e) = h5pom_rules::check_field_name(&spec.name) {
            return Err(syn::Error::new(
                f.span(),
                format!(
                    "field `{}`: stored name {:?} is invalid: {e} (use #[h5pom(rename = \"...\")])",
                    spec.ident, spec.name
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
    // The first field that cannot be a table column (entity references always can).
    let columnar_checks: Vec<Tokens> = stored
        .iter()
        .filter_map(|f| {
            let (ty, name) = (&f.ty, &f.name);
            let columnar = match f.kind {
                Kind::Field => quote! { <#ty as #krate::Field>::COLUMNAR },
                Kind::Entity | Kind::OptEntity | Kind::EntityArray => return None,
                Kind::EntityList | Kind::EntityMap | Kind::Dataset => quote! { false },
            };
            Some(quote! {
                if first.is_none() && !(#columnar) {
                    first = ::core::option::Option::Some(#name);
                }
            })
        })
        .collect();
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
                Kind::Dataset => {
                    let spec = match &f.compression {
                        Some(c) => quote! { ::core::option::Option::Some(#c) },
                        None => quote! { ::core::option::Option::None },
                    };
                    let chunk = match &f.chunk {
                        Some(c) => quote! { ::core::option::Option::Some(&[#(#c),*][..]) },
                        None => quote! { ::core::option::Option::None },
                    };
                    quote! { cx.save_vec_dataset(#name, &self.#ident[..], #spec, #chunk)?; }
                }
                Kind::EntityList => quote! {
                    cx.save_ref_list(#name, self.#ident.iter().map(|e| e.to_bits()))?;
                },
                Kind::EntityArray => quote! {
                    cx.save_ref_array(#name, self.#ident.iter().map(|e| e.to_bits()))?;
                },
                Kind::EntityMap => quote! {
                    cx.save_ref_map(#name, self.#ident.iter().map(|(k, e)| (k, e.to_bits())))?;
                },
                Kind::Entity => quote! {
                    cx.save_ref(#name, ::core::option::Option::Some(self.#ident.to_bits()))?;
                },
                Kind::OptEntity => quote! {
                    cx.save_opt_ref(#name, self.#ident.map(|e| e.to_bits()))?;
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
                Kind::Dataset => quote! {
                    if self.#ident.len() != old.#ident.len()
                        || self.#ident.iter().zip(&old.#ident)
                            .any(|(a, b)| !#krate::Element::same(a, b))
                    { #save }
                },
                Kind::Entity
                | Kind::OptEntity
                | Kind::EntityList
                | Kind::EntityArray
                | Kind::EntityMap => quote! {
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
        if !f.skip && f.kind == Kind::Dataset {
            return quote! { #ident: cx.load_vec_dataset(#name)? };
        }
        if !f.skip
            && let Some((kind, elem)) = entity_container(ty, true)
            && matches!(
                f.kind,
                Kind::EntityList | Kind::EntityArray | Kind::EntityMap
            )
        {
            let one = quote! { <#elem>::try_from_bits(b).ok_or_else(#dangling) };
            return match kind {
                Kind::EntityList => quote! {
                    #ident: cx.load_ref_list(#name)?.into_iter().map(|b| #one)
                        .collect::<#krate::Result<_>>()?
                },
                Kind::EntityArray => {
                    let len = match ty {
                        Type::Array(a) => a.len.clone(),
                        _ => syn::parse_quote!(0),
                    };
                    quote! {
                        #ident: {
                            let v = cx.load_ref_array::<{ #len }>(#name)?.into_iter().map(|b| #one)
                                .collect::<#krate::Result<::std::vec::Vec<_>>>()?;
                            <#ty>::try_from(v).map_err(|_| #krate::Error::MissingField {
                                path: cx.path().to_owned(),
                                field: #name.to_owned(),
                            })?
                        }
                    }
                }
                _ => quote! {
                    #ident: cx.load_ref_map(#name)?.into_iter()
                        .map(|(k, b)| (#one).map(|e| (k, e)))
                        .collect::<#krate::Result<_>>()?
                },
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

    // One bound per stored field type, spanned at the type: an unsupported type is one
    // error at the field (the body's uses of the field rely on the bound), not one per use.
    let bounds: Vec<Tokens> = stored
        .iter()
        .filter(|f| f.kind == Kind::Field && !mentions_shared(&f.ty))
        .map(|f| {
            let fty = &f.ty;
            let k = respan(quote! { #krate }, fty.span());
            quote_spanned! {fty.span()=> #fty: #k::Field }
        })
        .collect();
    let where_g = with_bounds(where_g, &bounds);
    let object_impl = quote! {
        impl #impl_g #krate::Object for #ty #ty_g #where_g {
            const TYPE_TAG: &'static str = #tag;
            const FIELDS: &'static [&'static str] = &[#(#names),*];
            const NOT_COLUMNAR: ::core::option::Option<&'static str> = {
                let mut first: ::core::option::Option<&'static str> = ::core::option::Option::None;
                #(#columnar_checks)*
                first
            };
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
                impl #ext for #krate::Handle<#ty> #where_g {
                    #(#bodies)*
                }
            }
        }
        _ => Tokens::new(),
    };
    Ok(quote! { #object_impl #ext })
}

/// True if `ty` names `Shared` anywhere: its `Field` bound needs `O: Object`, which for a
/// recursive object graph (`Node { next: Option<Shared<Node>> }`) would be a cycle of where
/// clauses. Such fields get no bound (their errors come from `Object` instead).
fn mentions_shared(ty: &Type) -> bool {
    fn walk(t: Tokens) -> bool {
        t.into_iter().any(|tt| match tt {
            proc_macro2::TokenTree::Ident(i) => i == "Shared",
            proc_macro2::TokenTree::Group(g) => walk(g.stream()),
            _ => false,
        })
    }
    walk(quote! { #ty })
}

/// `tokens` with every span set to `span` (so that an error about them points there).
fn respan(tokens: Tokens, span: Span) -> Tokens {
    tokens
        .into_iter()
        .map(|mut t| {
            if let proc_macro2::TokenTree::Group(g) = &t {
                let mut ng = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                ng.set_span(span);
                t = proc_macro2::TokenTree::Group(ng);
            } else {
                t.set_span(span);
            }
            t
        })
        .collect()
}

/// The struct's where clause plus `bounds`.
fn with_bounds(where_g: Option<&syn::WhereClause>, bounds: &[Tokens]) -> Tokens {
    let existing = where_g.map(|w| {
        let p = w.predicates.iter();
        quote! { #(#p,)* }
    });
    if existing.is_none() && bounds.is_empty() {
        return Tokens::new();
    }
    quote! { where #existing #(#bounds,)* }
}

#[cfg(test)]
mod tests {
    //! What the derive rejects at compile time: the rules of `h5pom_rules`, with the field named.

    use super::*;

    fn error(input: DeriveInput) -> String {
        match fields(&input) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn each_field_type_is_bound_once_where_the_field_is() {
        let input: DeriveInput = syn::parse_quote! {
            struct S {
                a: Weird,
                b: f32,
                #[h5pom(skip)]
                c: Skipped,
                d: Entity,
            }
        };
        let out = expand(&input).unwrap().to_string();
        assert_eq!(out.matches("Weird : :: h5pom :: Field").count(), 2, "{out}");
        assert_eq!(out.matches("f32 : :: h5pom :: Field").count(), 2, "{out}");
        assert!(!out.contains("Skipped : :: h5pom :: Field"), "{out}");
        assert!(!out.contains("Entity : :: h5pom :: Field"), "{out}");

        // No bound for `Shared` fields: a recursive graph would make the bounds a cycle.
        let input: DeriveInput = syn::parse_quote! {
            struct Node { next: Option<Shared<Node>>, all: Vec<Shared<Node>>, n: u8 }
        };
        let out = expand(&input).unwrap().to_string();
        assert!(
            !out.contains("Shared < Node > > : :: h5pom :: Field"),
            "{out}"
        );
        assert!(out.contains("u8 : :: h5pom :: Field"), "{out}");
    }

    #[test]
    fn good_fields_are_accepted() {
        let input: DeriveInput = syn::parse_quote! {
            struct S {
                #[h5pom(compression = "zstd:22")]
                a: Vec<f32>,
                #[h5pom(compression = "deflate:9", chunk = "64")]
                b: Vec<f32>,
                #[h5pom(compression = "zstd:-5")]
                c: Vec<f32>,
                #[h5pom(compression = "lz4")]
                d: Vec<f32>,
            }
        };
        assert_eq!(fields(&input).unwrap().len(), 4);
    }

    #[test]
    fn out_of_range_levels_are_compile_errors_naming_the_field() {
        for (spec, want) in [
            ("zstd:23", "zstd level 23 is outside -131072..=22"),
            ("zstd:99999999999", "zstd level 99999999999 is outside"),
            ("deflate:0", "deflate level 0 is outside 1..=9"),
            ("deflate:10", "deflate level 10 is outside 1..=9"),
            ("brotli", "unknown compression"),
            ("lz4:3", "unknown compression"),
        ] {
            let input: DeriveInput = syn::parse_quote! {
                struct S {
                    #[h5pom(compression = #spec)]
                    positions: Vec<f32>,
                }
            };
            let e = error(input);
            assert!(e.contains("field `positions`"), "{spec}: {e}");
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn bad_and_too_long_names_are_compile_errors_naming_the_field() {
        let long = "n".repeat(h5pom_rules::MAX_NAME_LEN + 1);
        let input: DeriveInput = syn::parse_quote! {
            struct S {
                #[h5pom(rename = #long)]
                value: i32,
            }
        };
        let e = error(input);
        assert!(e.contains("field `value`"), "{e}");
        assert!(e.contains("longer than 1024 bytes"), "{e}");

        let input: DeriveInput = syn::parse_quote! {
            struct S {
                #[h5pom(rename = "a-b")]
                value: i32,
            }
        };
        let e = error(input);
        assert!(e.contains("field `value`"), "{e}");
        assert!(e.contains("[A-Za-z0-9_]+"), "{e}");

        let ok_long = "n".repeat(h5pom_rules::MAX_NAME_LEN);
        let input: DeriveInput = syn::parse_quote! {
            struct S {
                #[h5pom(rename = #ok_long)]
                value: i32,
            }
        };
        assert!(fields(&input).is_ok());
    }
}
