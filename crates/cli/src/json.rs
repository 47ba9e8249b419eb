//! `h5pom dump --json`: the tree as one JSON document (`docs/FORMAT.md ("The inspector's output")`).

use std::collections::BTreeMap;
use std::path::Path;

use h5pom_store::{ArrayInfo, Child, File, GenericObject, Value};
use serde_json::{Map, Number, Value as Json, json};

use crate::dump::{Loaded, Root};
use crate::error::CliError;
use crate::target::join;
use crate::values::{Sample, Values};

/// The `format` field of every dump.
pub(crate) const FORMAT: &str = "h5pom-dump";
/// The `version` field: bumped when a field changes meaning or disappears.
pub(crate) const VERSION: u32 = 1;

/// The whole document, pretty-printed, with a final newline.
pub(crate) fn render(file_path: &Path, file: &File, l: &Loaded) -> Result<String, CliError> {
    let mut doc = Map::new();
    doc.insert("format".into(), FORMAT.into());
    doc.insert("version".into(), VERSION.into());
    doc.insert("file".into(), file_path.to_string_lossy().into());
    doc.insert(
        "format_version".into(),
        file.format_version()?.map_or(Json::Null, Json::from),
    );
    doc.insert("path".into(), l.path.clone().into());
    match &l.root {
        Root::Object(obj) => doc.insert("object".into(), object(obj, &l.samples)),
        Root::Array(info) => doc.insert("array".into(), array(info, l.samples.get(&l.path))),
    };
    let mut s = serde_json::to_string_pretty(&Json::Object(doc))
        .map_err(|e| CliError::Io(std::io::Error::other(e)))?;
    s.push('\n');
    Ok(s)
}

fn object(obj: &GenericObject, samples: &BTreeMap<String, Sample>) -> Json {
    let attrs: Map<_, _> = obj
        .attrs
        .iter()
        .map(|(k, v)| (k.clone(), value(v)))
        .collect();
    let lists: Map<_, _> = obj
        .lists
        .iter()
        .map(|(k, items)| (k.clone(), Json::Array(items.iter().map(value).collect())))
        .collect();
    let dicts: Map<_, _> = obj
        .dicts
        .iter()
        .map(|(k, d)| {
            let items = d.iter().map(|(k, v)| (k.clone(), value(v)));
            (k.clone(), Json::Object(items.collect()))
        })
        .collect();
    let arrays: Map<_, _> = obj
        .arrays
        .iter()
        .map(|(k, info)| (k.clone(), array(info, samples.get(&join(&obj.path, k)))))
        .collect();
    let children: Map<_, _> = obj
        .children
        .iter()
        .map(|(k, c)| (k.clone(), child(c, samples)))
        .collect();
    let object_lists: Map<_, _> = obj
        .object_lists
        .iter()
        .map(|(k, items)| {
            let items = items.iter().map(|c| child(c, samples));
            (k.clone(), Json::Array(items.collect()))
        })
        .collect();
    let object_dicts: Map<_, _> = obj
        .object_dicts
        .iter()
        .map(|(k, d)| {
            let items = d.iter().map(|(k, c)| (k.clone(), child(c, samples)));
            (k.clone(), Json::Object(items.collect()))
        })
        .collect();
    json!({
        "path": obj.path,
        "tag": obj.tag,
        "attrs": attrs,
        "lists": lists,
        "dicts": dicts,
        "arrays": arrays,
        "children": children,
        "object_lists": object_lists,
        "object_dicts": object_dicts,
    })
}

fn child(c: &Child, samples: &BTreeMap<String, Sample>) -> Json {
    match c {
        Child::Object(o) => object(o, samples),
        Child::Link { path } => json!({ "link": path }),
        Child::Other { what } => json!({ "other": what }),
        _ => json!({ "other": "unknown entry" }),
    }
}

fn array(info: &ArrayInfo, sample: Option<&Sample>) -> Json {
    let mut m = Map::new();
    m.insert("dtype".into(), info.dtype.clone().into());
    m.insert("shape".into(), info.shape.clone().into());
    m.insert(
        "chunks".into(),
        info.chunks.clone().map_or(Json::Null, Json::from),
    );
    if let Some(sample) = sample {
        let values = match &sample.values {
            Values::Int(v) => Json::Array(v.iter().map(|&x| Json::from(x)).collect()),
            Values::UInt(v) => Json::Array(v.iter().map(|&x| Json::from(x)).collect()),
            Values::F32(v) => Json::Array(v.iter().map(|&x| f32_json(x)).collect()),
            Values::F64(v) => Json::Array(v.iter().map(|&x| f64_json(x)).collect()),
            Values::Unsupported(what) => json!({ "unsupported": what }),
        };
        m.insert("values".into(), values);
        m.insert("truncated".into(), sample.truncated().into());
    }
    Json::Object(m)
}

/// One scalar, typed: see "Values" in `docs/FORMAT.md ("The inspector's output")`.
pub(crate) fn value(v: &Value) -> Json {
    match v {
        Value::None => Json::Null,
        Value::Bool(b) => (*b).into(),
        Value::I8(x) => (*x).into(),
        Value::I16(x) => (*x).into(),
        Value::I32(x) => (*x).into(),
        Value::I64(x) => (*x).into(),
        Value::U8(x) => (*x).into(),
        Value::U16(x) => (*x).into(),
        Value::U32(x) => (*x).into(),
        Value::U64(x) => (*x).into(),
        Value::F32(x) => f32_json(*x),
        Value::F64(x) => f64_json(*x),
        Value::Str(s) => s.clone().into(),
        Value::Date(d) => json!({ "date": d.format("%Y-%m-%d").to_string() }),
        Value::DateTime(t) => json!({ "datetime": t.format("%Y-%m-%dT%H:%M:%S%.f").to_string() }),
        Value::List(items) => Json::Array(items.iter().map(value).collect()),
        Value::Unsupported(what) => json!({ "unsupported": what }),
        other => json!({ "unsupported": other.type_name() }),
    }
}

/// A finite `f64` as a JSON number; NaN and infinities as `{"float": "NaN" | "inf" | "-inf"}`.
fn f64_json(x: f64) -> Json {
    match Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None => json!({ "float": non_finite(x) }),
    }
}

/// An `f32` as the shortest decimal that reads back as the same `f32` (`0.1`, not
/// `0.10000000149011612`).
fn f32_json(x: f32) -> Json {
    match x.to_string().parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) => Json::Number(n),
        None => json!({ "float": non_finite(x.into()) }),
    }
}

fn non_finite(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}
