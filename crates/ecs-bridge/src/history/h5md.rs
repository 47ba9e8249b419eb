//! An H5MD 1.1 view of the history, for particle tools (MDAnalysis, VMD's H5MD plugin):
//! `/h5md` (version, author, creator), `/particles/<group>/<element>/{step,time,value}` and
//! `/observables/<name>/{step,time,value}`, every dataset a hard link to the history's own
//! series (no copy), and `/particles/<group>/box` with fixed edges.

use bevy_ecs::prelude::*;
use h5pom_store::reexports::hdf5::Group;
use h5pom_store::reexports::hdf5::types::VarLenUnicode;

use crate::error::{EcsError, Result};
use crate::ids::IdMap;

use super::{HISTORY, STEP, TIME, h5, series_name};

type EntityOf = dyn Fn(&World) -> Option<Entity> + Send + Sync;
type EdgesOf = dyn Fn(&World) -> Option<Vec<f64>> + Send + Sync;

/// One H5MD particle group: the array fields of one entity's component.
pub struct ParticleGroup {
    name: String,
    entity: Box<EntityOf>,
    component: &'static str,
    elements: Vec<(String, String)>,
    edges: Option<Box<EdgesOf>>,
}

impl std::fmt::Debug for ParticleGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticleGroup")
            .field("name", &self.name)
            .field("component", &self.component)
            .field("elements", &self.elements)
            .finish()
    }
}

impl ParticleGroup {
    /// The particle group `name` (`/particles/<name>`): the array fields of component `tag`
    /// of the entity `entity` picks from the world.
    pub fn new(
        name: impl Into<String>,
        tag: &'static str,
        entity: impl Fn(&World) -> Option<Entity> + Send + Sync + 'static,
    ) -> Self {
        ParticleGroup {
            name: name.into(),
            entity: Box::new(entity),
            component: tag,
            elements: Vec::new(),
            edges: None,
        }
    }

    /// H5MD element `element` (`position`, `velocity`, `force`, `id`, `species`, …) is the
    /// array field `field` (`[particle, …]` per sample).
    pub fn element(mut self, element: impl Into<String>, field: impl Into<String>) -> Self {
        self.elements.push((element.into(), field.into()));
        self
    }

    /// A periodic box with the fixed edge lengths `edges` reads from the world (one per
    /// dimension).
    pub fn periodic_box(
        mut self,
        edges: impl Fn(&World) -> Option<Vec<f64>> + Send + Sync + 'static,
    ) -> Self {
        self.edges = Some(Box::new(edges));
        self
    }
}

/// The H5MD view of a history ([`History::h5md`](super::History::h5md)).
#[derive(Debug)]
pub struct H5md {
    author: String,
    particles: Vec<ParticleGroup>,
    observables: Vec<(String, &'static str, String)>,
}

impl H5md {
    /// A view whose `/h5md/author` is `author`.
    pub fn new(author: impl Into<String>) -> Self {
        H5md {
            author: author.into(),
            particles: Vec::new(),
            observables: Vec::new(),
        }
    }

    /// Adds a particle group.
    pub fn particles(mut self, group: ParticleGroup) -> Self {
        self.particles.push(group);
        self
    }

    /// Observable `name` (`/observables/<name>`) is field `field` of the history of table
    /// or group component `tag` (`[step, entity]`) or resource `tag` (`[step]`).
    pub fn observable(
        mut self,
        name: impl Into<String>,
        tag: &'static str,
        field: impl Into<String>,
    ) -> Self {
        self.observables.push((name.into(), tag, field.into()));
        self
    }
}

/// The running view: which links exist already.
pub(crate) struct H5mdRun {
    conf: H5md,
    started: bool,
    linked: Vec<bool>,
    observed: Vec<bool>,
}

fn group(parent: &Group, name: &str, path: &str) -> Result<Group> {
    if parent.link_exists(name) {
        parent.group(name).map_err(h5("open group", path))
    } else {
        parent.create_group(name).map_err(h5("create group", path))
    }
}

fn str_attr(g: &Group, name: &str, value: &str, path: &str) -> Result<()> {
    let v: VarLenUnicode = value.parse().map_err(|_| EcsError::InvalidTag {
        tag: value.to_owned(),
    })?;
    g.new_attr::<VarLenUnicode>()
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .map_err(h5("write attribute", path))
}

/// Hard-links `target` (a path in the same file) as `name` in `g`, unless it exists.
fn link(g: &Group, target: &str, name: &str) -> Result<()> {
    if g.link_exists(name) {
        return Ok(());
    }
    g.link_hard(target, name).map_err(h5("link", target))
}

impl H5mdRun {
    /// The configuration it was made from.
    pub(crate) fn into_conf(self) -> H5md {
        self.conf
    }

    pub(crate) fn new(conf: H5md) -> Self {
        let n = conf.particles.len();
        let m = conf.observables.len();
        H5mdRun {
            conf,
            started: false,
            linked: vec![false; n],
            observed: vec![false; m],
        }
    }

    /// Writes `/h5md` once, and the links of every group whose series exist by now.
    pub(crate) fn update(&mut self, world: &World, ids: &IdMap, root: &Group) -> Result<()> {
        if !self.started {
            let h = group(root, "h5md", "/h5md")?;
            if !h
                .attr_names()
                .map_err(h5("list attributes", "/h5md"))?
                .contains(&"version".into())
            {
                h.new_attr::<i32>()
                    .shape([2])
                    .create("version")
                    .and_then(|a| a.write(&[1i32, 1]))
                    .map_err(h5("write attribute", "/h5md@version"))?;
            }
            let author = group(&h, "author", "/h5md/author")?;
            if !author
                .attr_names()
                .map_err(h5("list attributes", "/h5md/author"))?
                .contains(&"name".into())
            {
                str_attr(&author, "name", &self.conf.author, "/h5md/author@name")?;
            }
            let creator = group(&h, "creator", "/h5md/creator")?;
            if !creator
                .attr_names()
                .map_err(h5("list attributes", "/h5md/creator"))?
                .contains(&"name".into())
            {
                str_attr(&creator, "name", "h5pom", "/h5md/creator@name")?;
                str_attr(
                    &creator,
                    "version",
                    env!("CARGO_PKG_VERSION"),
                    "/h5md/creator@version",
                )?;
            }
            self.started = true;
        }
        let history = format!("/ecs/{HISTORY}");
        for (k, p) in self.conf.particles.iter().enumerate() {
            if self.linked[k] {
                continue;
            }
            let Some(id) = (p.entity)(world).and_then(|e| ids.id(e)) else {
                continue;
            };
            let series = format!("{history}/{}/{id}", p.component);
            if !root.link_exists(&series[1..]) {
                continue;
            }
            let particles = group(root, "particles", "/particles")?;
            let gpath = format!("/particles/{}", p.name);
            let pg = group(&particles, &p.name, &gpath)?;
            for (element, field) in &p.elements {
                let epath = format!("{gpath}/{element}");
                let e = group(&pg, element, &epath)?;
                link(&e, &format!("{series}/{}", series_name(field)), "value")?;
                link(&e, &format!("{series}/{STEP}"), "step")?;
                link(&e, &format!("{series}/{TIME}"), "time")?;
            }
            self.linked[k] = true;
        }
        // Time-dependent box edges, one row per sample of the group's positions (what
        // MDAnalysis reads), with the group's step and time.
        for (k, p) in self.conf.particles.iter().enumerate() {
            if !self.linked[k] {
                continue;
            }
            let Some(edges) = p.edges.as_ref().and_then(|f| f(world)) else {
                continue;
            };
            let Some(id) = (p.entity)(world).and_then(|e| ids.id(e)) else {
                continue;
            };
            let series = format!("{history}/{}/{id}", p.component);
            let samples = root
                .dataset(&format!("{}/{STEP}", &series[1..]))
                .map_err(h5("open dataset", format!("{series}/{STEP}")))?
                .shape()[0];
            let gpath = format!("/particles/{}", p.name);
            let bpath = format!("{gpath}/box");
            let pg = root.group(&gpath[1..]).map_err(h5("open group", &gpath))?;
            let b = group(&pg, "box", &bpath)?;
            let dim = edges.len();
            if !b.link_exists("edges") {
                b.new_attr::<i32>()
                    .create("dimension")
                    .and_then(|a| a.write_scalar(&(dim as i32)))
                    .map_err(h5("write attribute", &bpath))?;
                let periodic: Vec<VarLenUnicode> = edges
                    .iter()
                    .map(|_| "periodic".parse().unwrap_or_default())
                    .collect();
                b.new_attr::<VarLenUnicode>()
                    .shape([dim])
                    .create("boundary")
                    .and_then(|a| a.write(&periodic))
                    .map_err(h5("write attribute", &bpath))?;
                let e = group(&b, "edges", &format!("{bpath}/edges"))?;
                e.new_dataset::<f64>()
                    .chunk([64, dim.max(1)])
                    .shape([(0, None), (dim, None)])
                    .create("value")
                    .map_err(h5("create dataset", format!("{bpath}/edges/value")))?;
                link(&e, &format!("{series}/{STEP}"), "step")?;
                link(&e, &format!("{series}/{TIME}"), "time")?;
            }
            let v = b
                .dataset("edges/value")
                .map_err(h5("open dataset", format!("{bpath}/edges/value")))?;
            let have = v.shape()[0];
            if have < samples {
                let rows = h5pom_store::reexports::ndarray::Array2::from_shape_fn(
                    (samples - have, dim),
                    |(_, j)| edges[j],
                );
                v.resize([samples, dim])
                    .and_then(|()| {
                        v.write_slice(
                            &rows,
                            h5pom_store::reexports::ndarray::s![have..samples, ..],
                        )
                    })
                    .map_err(h5("write dataset", format!("{bpath}/edges/value")))?;
            }
        }
        for (k, (name, tag, field)) in self.conf.observables.iter().enumerate() {
            if self.observed[k] {
                continue;
            }
            let series = format!("{history}/{tag}");
            let value = format!("{series}/{}", series_name(field));
            if !root.link_exists(&value[1..]) {
                continue;
            }
            let obs = group(root, "observables", "/observables")?;
            let opath = format!("/observables/{name}");
            let o = group(&obs, name, &opath)?;
            link(&o, &value, "value")?;
            link(&o, &format!("{series}/{STEP}"), "step")?;
            link(&o, &format!("{series}/{TIME}"), "time")?;
            self.observed[k] = true;
        }
        Ok(())
    }
}

/// The root groups of the H5MD view, which run files link to the history file.
pub(crate) const ROOTS: [&str; 3] = ["h5md", "particles", "observables"];
