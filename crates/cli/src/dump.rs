//! `h5pom dump`: loading the tree at PATH generically, and printing it as an indented tree.

use std::collections::BTreeMap;
use std::fmt::Display;

use h5pom_store::reexports::hdf5;
use h5pom_store::{ArrayInfo, Child, File, GenericObject, Value};

use crate::error::{CliError, Hdf5Ctx};
use crate::target::{Target, join};
use crate::values::{self, Limit, Sample, Values};

/// What `dump` prints: the tree (or dataset) at PATH, with dataset values if asked for.
pub(crate) struct Loaded {
    /// The absolute path dumped.
    pub(crate) path: String,
    /// The object or dataset there.
    pub(crate) root: Root,
    /// Dataset values by dataset path (only with `--values`).
    pub(crate) samples: BTreeMap<String, Sample>,
}

/// The thing at PATH.
pub(crate) enum Root {
    /// A group (root, folder or object) and everything below it.
    Object(GenericObject),
    /// A dataset.
    Array(ArrayInfo),
}

impl Loaded {
    /// Loads what `target` names; reads dataset values if `limit` is given.
    pub(crate) fn load(
        file: &File,
        target: &Target,
        limit: Option<Limit>,
    ) -> Result<Self, CliError> {
        let mut samples = BTreeMap::new();
        Ok(match target {
            Target::Group(folder) => {
                let obj = folder.load_generic_self()?;
                if let Some(limit) = limit {
                    collect(file, &obj, limit, &mut samples)?;
                }
                Loaded {
                    path: obj.path.clone(),
                    root: Root::Object(obj),
                    samples,
                }
            }
            Target::Dataset { path, ds } => {
                if let Some(limit) = limit {
                    samples.insert(path.clone(), values::read(ds, path, limit)?);
                }
                Loaded {
                    path: path.clone(),
                    root: Root::Array(array_info(ds, path)?),
                    samples,
                }
            }
        })
    }
}

/// Dtype, shape and chunks of a dataset, as the store describes the arrays of a loaded object.
pub(crate) fn array_info(ds: &hdf5::Dataset, path: &str) -> Result<ArrayInfo, CliError> {
    Ok(ArrayInfo::of(ds, path)?)
}

/// Reads the values of every dataset reached in `obj` (each shared object once).
fn collect(
    file: &File,
    obj: &GenericObject,
    limit: Limit,
    out: &mut BTreeMap<String, Sample>,
) -> Result<(), CliError> {
    for name in obj.arrays.keys() {
        let path = join(&obj.path, name);
        let ds = file.hdf5().dataset(&path).at("open dataset", &path)?;
        out.insert(path.clone(), values::read(&ds, &path, limit)?);
    }
    for child in sub_objects(obj) {
        if let Child::Object(o) = child {
            collect(file, o, limit, out)?;
        }
    }
    Ok(())
}

/// Every sub-group entry of `obj`: children, object-list items, object-dict items.
fn sub_objects(obj: &GenericObject) -> impl Iterator<Item = &Child> {
    obj.children
        .values()
        .chain(obj.object_lists.values().flatten())
        .chain(obj.object_dicts.values().flat_map(|d| d.values()))
}

/// The tree as text: one line per attribute, list, dict, dataset and sub-object, indented by
/// two spaces per level. Format described in `docs/FORMAT.md ("The inspector's output")`.
pub(crate) fn render(l: &Loaded) -> String {
    let mut out = Text::default();
    match &l.root {
        Root::Object(obj) => {
            out.line(0, format!("{}{}", name(&l.path), header(obj)));
            out.body(obj, 1, &l.samples);
        }
        Root::Array(info) => {
            out.line(0, array_line(&l.path, info, l.samples.get(&l.path)));
        }
    }
    out.0
}

#[derive(Default)]
struct Text(String);

impl Text {
    fn line(&mut self, indent: usize, text: impl Display) {
        for _ in 0..indent {
            self.0.push_str("  ");
        }
        self.0.push_str(&text.to_string());
        self.0.push('\n');
    }

    fn body(&mut self, obj: &GenericObject, indent: usize, samples: &BTreeMap<String, Sample>) {
        for (n, v) in &obj.attrs {
            self.line(indent, format!("{} = {}", name(n), value_with_type(v)));
        }
        for (n, items) in &obj.lists {
            let list = items.iter().map(ToString::to_string).collect::<Vec<_>>();
            self.line(
                indent,
                format!(
                    "{} = [{}]  (list of {})",
                    name(n),
                    list.join(", "),
                    items.len()
                ),
            );
        }
        for (n, dict) in &obj.dicts {
            let items = dict.iter().map(|(k, v)| format!("{k}: {v}"));
            self.line(
                indent,
                format!(
                    "{} = {{{}}}  (dict of {})",
                    name(n),
                    items.collect::<Vec<_>>().join(", "),
                    dict.len()
                ),
            );
        }
        for (n, info) in &obj.arrays {
            let sample = samples.get(&join(&obj.path, n));
            self.line(indent, array_line(n, info, sample));
        }
        for (n, child) in &obj.children {
            self.child(&name(n), child, indent, samples);
        }
        for (n, items) in &obj.object_lists {
            if items.is_empty() {
                self.line(indent, format!("{} = []  (object list of 0)", name(n)));
            }
            for (i, child) in items.iter().enumerate() {
                self.child(&format!("{}[{i}]", name(n)), child, indent, samples);
            }
        }
        for (n, dict) in &obj.object_dicts {
            for (key, child) in dict {
                self.child(&format!("{}{{{key}}}", name(n)), child, indent, samples);
            }
        }
    }

    fn child(
        &mut self,
        label: &str,
        child: &Child,
        indent: usize,
        samples: &BTreeMap<String, Sample>,
    ) {
        match child {
            Child::Object(o) => {
                self.line(indent, format!("{label}{}", header(o)));
                self.body(o, indent + 1, samples);
            }
            Child::Link { path } => self.line(indent, format!("{label} -> {}", name(path))),
            Child::Other { what } => self.line(indent, format!("{label}: ({what})")),
            _ => self.line(indent, format!("{label}: (unknown entry)")),
        }
    }
}

/// ` <Tag>` for an object, ` (folder)` for an untagged group.
fn header(obj: &GenericObject) -> String {
    match &obj.tag {
        Some(tag) => format!(" <{}>", name(tag)),
        None => " (folder)".into(),
    }
}

/// A name as printed: as is, or quoted and escaped if it holds control characters.
fn name(n: &str) -> String {
    if n.chars().any(char::is_control) {
        format!("{n:?}")
    } else {
        n.to_owned()
    }
}

fn value_with_type(v: &Value) -> String {
    match v {
        Value::None | Value::Unsupported(_) => v.to_string(),
        Value::List(items) => format!("{v}  (array attribute of {})", items.len()),
        _ => format!("{v}  ({})", v.type_name()),
    }
}

fn array_line(label: &str, info: &ArrayInfo, sample: Option<&Sample>) -> String {
    let mut s = format!("{}: dataset {} {:?}", name(label), info.dtype, info.shape);
    if let Some(chunks) = &info.chunks {
        s.push_str(&format!(", chunks {chunks:?}"));
    }
    if let Some(sample) = sample {
        s.push_str(" = ");
        s.push_str(&sample_text(sample));
    }
    s
}

fn sample_text(sample: &Sample) -> String {
    fn join_all<T: Display>(v: &[T]) -> String {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
    let items = match &sample.values {
        Values::Int(v) => join_all(v),
        Values::UInt(v) => join_all(v),
        Values::F32(v) => join_all(v),
        Values::F64(v) => join_all(v),
        Values::Unsupported(what) => return format!("<values not shown: {what}>"),
    };
    if sample.truncated() {
        let sep = if items.is_empty() { "" } else { ", " };
        format!(
            "[{items}{sep}…]  ({} of {} values)",
            sample.values.len(),
            sample.total
        )
    } else {
        format!("[{items}]")
    }
}
