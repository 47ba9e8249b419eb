//! `h5pom ls`: one line per entry of a group, sorted by name, in aligned columns.
//!
//! Columns: name, kind (`object`, `folder`, `dataset`, `link`, `other`), type tag (`-` if
//! none), and details: `dtype [shape]` for datasets, `-> /first/path` for a second hard link to
//! a group listed above, `soft link` / `external link` for symbolic links.

use std::collections::BTreeMap;

use h5pom_store::reexports::hdf5::{
    self, IndexType, IterationOrder, LinkType, LocationToken, LocationType,
};
use h5pom_store::{EntryKind, File, Folder};

use crate::dump::array_info;
use crate::error::{CliError, Hdf5Ctx};
use crate::target::{Target, join};

struct Row {
    name: String,
    kind: &'static str,
    tag: String,
    detail: String,
}

/// The listing of `target` (a dataset lists as itself).
pub(crate) fn render(file: &File, target: &Target) -> Result<String, CliError> {
    let rows = match target {
        Target::Group(folder) => rows(file, folder)?,
        Target::Dataset { path, ds } => {
            let name = path.rsplit('/').next().unwrap_or(path).to_owned();
            vec![dataset_row(name, ds, path)?]
        }
    };
    Ok(table(&rows))
}

fn rows(file: &File, folder: &Folder) -> Result<Vec<Row>, CliError> {
    let tags: BTreeMap<String, EntryKind> = folder
        .entries()?
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    // A `Folder` does not hand out its group: open the same path through the file.
    let group = file
        .hdf5()
        .group(folder.path())
        .at("open group", folder.path())?;
    let mut links = group
        .links(IndexType::Name, IterationOrder::Increasing)
        .at("list links", folder.path())?;
    links.sort_by(|a, b| a.0.cmp(&b.0));
    let mut seen: Vec<(LocationToken, String)> = Vec::new();
    let mut rows = Vec::with_capacity(links.len());
    for (name, link) in links {
        let path = join(folder.path(), &name);
        let tag = match tags.get(&name) {
            Some(EntryKind::Group { tag: Some(t) }) => t.clone(),
            _ => "-".into(),
        };
        let row = |kind, detail: String| Row {
            name: name.clone(),
            kind,
            tag: tag.clone(),
            detail,
        };
        match link.link_type {
            LinkType::Soft => rows.push(row("link", "soft link".into())),
            LinkType::External => rows.push(row("link", "external link".into())),
            LinkType::Hard => match group.loc_info_by_name(&name) {
                Err(_) => rows.push(row("other", String::new())),
                Ok(info) => {
                    if info.loc_type == LocationType::Group {
                        if let Some((_, first)) = seen.iter().find(|(t, _)| *t == info.token) {
                            rows.push(row("link", format!("-> {first}")));
                            continue;
                        }
                        seen.push((info.token, path.clone()));
                    }
                    rows.push(match info.loc_type {
                        LocationType::Group if tag == "-" => row("folder", String::new()),
                        LocationType::Group => row("object", String::new()),
                        LocationType::Dataset => {
                            let ds = group.dataset(&name).at("open dataset", &path)?;
                            dataset_row(name.clone(), &ds, &path)?
                        }
                        _ => row("other", String::new()),
                    });
                }
            },
        }
    }
    Ok(rows)
}

fn dataset_row(name: String, ds: &hdf5::Dataset, path: &str) -> Result<Row, CliError> {
    let info = array_info(ds, path)?;
    Ok(Row {
        name,
        kind: "dataset",
        tag: "-".into(),
        detail: format!("{} {:?}", info.dtype, info.shape),
    })
}

fn table(rows: &[Row]) -> String {
    let shown: Vec<String> = rows.iter().map(|r| shown_name(&r.name)).collect();
    let w_name = shown.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let w_kind = rows.iter().map(|r| r.kind.len()).max().unwrap_or(0);
    let w_tag = rows
        .iter()
        .map(|r| r.tag.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (r, name) in rows.iter().zip(&shown) {
        let line = format!(
            "{name:<w_name$}  {:<w_kind$}  {:<w_tag$}  {}",
            r.kind, r.tag, r.detail
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn shown_name(n: &str) -> String {
    if n.chars().any(|c| c.is_control() || c == ' ') {
        format!("{n:?}")
    } else {
        n.to_owned()
    }
}
