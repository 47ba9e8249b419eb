//! Flushes that never take the app down: a reference to an entity that is not persisted (or
//! was despawned) skips that one component, every other component is written, and the
//! component is written once the cause is gone; a table of a non-columnar type is refused
//! when the registry is first used.

use bevy_ecs::prelude::*;
use h5pom_ecs::{DanglingRefs, EcsError, H5Sync, Persist, PersistentId, RefTarget, Registry};

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Link {
    label: String,
    to: Option<Entity>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Follow {
    speed: f32,
    leader: Entity,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Mass {
    kg: f64,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug)]
#[h5pom(crate = "h5pom_store")]
struct Samples {
    values: ndarray::Array1<f64>,
}

fn registry() -> Registry {
    Registry::new()
        .component::<Link>()
        .table::<Follow>()
        .component::<Mass>()
}

fn flush(world: &mut World) -> h5pom_ecs::FlushStats {
    world.resource_scope(|world, mut sync: Mut<H5Sync>| {
        let s = sync
            .flush_now(world)
            .expect("the flush never fails on a bad reference");
        world.clear_trackers();
        s
    })
}

/// Every persisted entity of the file at `path`: (persistent id, Link with the target's id,
/// Follow's leader id, Mass).
type Stored = Vec<(u64, Option<(String, Option<u64>)>, Option<u64>, Option<f64>)>;

fn stored(path: &std::path::Path) -> Stored {
    let mut w = World::new();
    registry().load(&mut w, path).unwrap();
    let pid = |w: &World, e: Entity| w.get::<PersistentId>(e).unwrap().0;
    let mut q = w.query::<(Entity, &PersistentId)>();
    let mut out: Stored = q
        .iter(&w)
        .map(|(e, p)| {
            (
                p.0,
                w.get::<Link>(e)
                    .map(|l| (l.label.clone(), l.to.map(|t| pid(&w, t)))),
                w.get::<Follow>(e).map(|f| pid(&w, f.leader)),
                w.get::<Mass>(e).map(|m| m.kg),
            )
        })
        .collect();
    out.sort_by_key(|r| r.0);
    out
}

#[test]
fn a_reference_to_an_unpersisted_entity_skips_that_component_only_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let mut world = World::new();
    let loner = world.spawn(Mass { kg: 9.0 }).id(); // no Persist
    let a = world
        .spawn((
            Persist,
            Link {
                label: "a".into(),
                to: Some(loner),
            },
            Mass { kg: 1.0 },
        ))
        .id();
    let b = world
        .spawn((
            Persist,
            Follow {
                speed: 2.0,
                leader: loner,
            },
            Mass { kg: 2.0 },
        ))
        .id();
    let c = world
        .spawn((
            Persist,
            Follow {
                speed: 3.0,
                leader: a,
            },
        ))
        .id();
    world.insert_resource(H5Sync::create(&path, &registry()).unwrap());
    let stats = flush(&mut world);
    assert_eq!(stats.skipped, 2, "a's Link and b's Follow");
    let skipped = world.resource::<H5Sync>().skipped();
    assert_eq!(skipped.len(), 2);
    for e in skipped {
        match e {
            EcsError::DanglingRef { target, state, .. } => {
                assert_eq!(*target, loner);
                assert_eq!(*state, RefTarget::NotPersisted);
                assert!(e.to_string().contains("not persisted"), "{e}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    let (pa, pb, pc) = (
        world.get::<PersistentId>(a).unwrap().0,
        world.get::<PersistentId>(b).unwrap().0,
        world.get::<PersistentId>(c).unwrap().0,
    );
    // Everything else is in the file: both masses, and c's row.
    let mut want = vec![
        (pa, None, None, Some(1.0)),
        (pb, None, None, Some(2.0)),
        (pc, None, Some(pa), None),
    ];
    want.sort_by_key(|r| r.0);
    assert_eq!(stored(&path), want);
    // Nothing changed, but the skipped components are retried: still skipped.
    assert_eq!(flush(&mut world).skipped, 2);
    // The cause goes: the target is persisted. The next flush writes both, unchanged as they are.
    world.entity_mut(loner).insert(Persist);
    let stats = flush(&mut world);
    assert_eq!(stats.skipped, 0);
    assert!(world.resource::<H5Sync>().skipped().is_empty());
    let pl = world.get::<PersistentId>(loner).unwrap().0;
    let s = stored(&path);
    assert!(
        s.contains(&(pa, Some(("a".into(), Some(pl))), None, Some(1.0))),
        "{s:?}"
    );
    assert!(s.contains(&(pb, None, Some(pl), Some(2.0))), "{s:?}");
}

#[test]
fn a_despawned_target_is_named_as_such_and_store_none_keeps_optional_links() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let mut world = World::new();
    let gone = world.spawn((Persist, Mass { kg: 5.0 })).id();
    let a = world
        .spawn((
            Persist,
            Link {
                label: "a".into(),
                to: Some(gone),
            },
            Follow {
                speed: 1.0,
                leader: gone,
            },
        ))
        .id();
    world.insert_resource(H5Sync::create(&path, &registry()).unwrap());
    assert_eq!(flush(&mut world).skipped, 0);
    world.despawn(gone);
    world.get_mut::<Link>(a).unwrap().label = "a2".into();
    world.get_mut::<Follow>(a).unwrap().speed = 1.5;
    let stats = flush(&mut world);
    assert_eq!(stats.skipped, 2);
    for e in world.resource::<H5Sync>().skipped() {
        assert!(
            matches!(
                e,
                EcsError::DanglingRef {
                    state: RefTarget::Despawned,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("was despawned"), "{e}");
    }
    // The file keeps the last values of the skipped components (the link still names the
    // despawned entity's id, which the file no longer holds: the load refuses nothing else).
    let pa = world.get::<PersistentId>(a).unwrap().0;
    // StoreNone: the optional link is stored empty; the required one is still skipped.
    world
        .resource_mut::<H5Sync>()
        .set_dangling_refs(DanglingRefs::StoreNone);
    let stats = flush(&mut world);
    assert_eq!(stats.skipped, 1, "Follow.leader is required");
    assert!(matches!(
        &world.resource::<H5Sync>().skipped()[0],
        EcsError::DanglingRef {
            component: "Follow",
            ..
        }
    ));
    // Once the required link points at a persisted entity again, everything is written.
    world.get_mut::<Follow>(a).unwrap().leader = a;
    assert_eq!(flush(&mut world).skipped, 0);
    world.remove_resource::<H5Sync>();
    assert_eq!(
        stored(&path),
        vec![(pa, Some(("a2".into(), None)), Some(pa), None)]
    );
}

#[test]
fn a_table_of_a_type_with_an_array_is_refused_when_the_registry_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new().table::<Samples>();
    let Err(err) = H5Sync::create(dir.path().join("w.h5"), &registry) else {
        panic!("a table of a type with an array field was accepted");
    };
    match &err {
        EcsError::NotColumnar { component, field } => {
            assert_eq!((*component, *field), ("Samples", "values"));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        err.to_string().contains("register it with `component`"),
        "{err}"
    );
    assert!(registry.validate().is_err());
    // As a group component it is fine.
    assert!(Registry::new().component::<Samples>().validate().is_ok());
}
