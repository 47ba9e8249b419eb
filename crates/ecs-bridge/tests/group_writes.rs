//! Group storage writes a changed component in place when its values have the kinds it
//! wrote last (one open and one write per attribute, no type lookup), and through the
//! checking path when a kind changes (`None` ⇄ a number, a shorter string list, …). These
//! tests change kinds in every order, with both durabilities, and reload after every tick:
//! a value written in place into an attribute of another type would come back converted or
//! fail to load.

use bevy_ecs::prelude::*;
use h5pom_ecs::{Durability, H5Sync, Persist, PersistentId, Registry};

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Gauge {
    reading: Option<f32>,
    count: i64,
    unit: String,
    window: [u16; 3],
    spare: Option<i8>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Tag {
    level: Option<u64>,
}

fn registry() -> Registry {
    Registry::new().component::<Gauge>().component::<Tag>()
}

fn flush(world: &mut World) -> h5pom_ecs::FlushStats {
    world.resource_scope(|world, mut sync: Mut<H5Sync>| {
        let s = sync.flush_now(world).expect("flush");
        world.clear_trackers();
        s
    })
}

type State = Vec<(u64, Option<Gauge>, Option<Tag>)>;

fn state(w: &mut World) -> State {
    let mut q = w.query::<(&PersistentId, Option<&Gauge>, Option<&Tag>)>();
    let mut v: State = q
        .iter(w)
        .map(|(id, g, t)| (id.0, g.cloned(), t.cloned()))
        .collect();
    v.sort_by_key(|s| s.0);
    v
}

fn gauge(step: usize, i: usize) -> Gauge {
    // Each entity cycles through kinds at its own phase, so one tick mixes in-place and
    // checked writes.
    let k = step + i;
    Gauge {
        reading: match k % 4 {
            0 => None,
            1 => Some(k as f32 + 0.25),
            2 => Some(-(k as f32)),
            _ => None,
        },
        count: (k * 1_000_003) as i64 - 7,
        unit: if k.is_multiple_of(3) {
            String::new()
        } else {
            format!("u{k}")
        },
        window: [k as u16, (k * 2) as u16, u16::MAX - k as u16],
        spare: if k.is_multiple_of(5) {
            Some(-(k as i8))
        } else {
            None
        },
    }
}

fn run(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.h5");
    let mut world = World::new();
    world.insert_resource(H5Sync::create_with(&path, &registry(), durability).unwrap());
    let ents: Vec<Entity> = (0..12)
        .map(|i| {
            world
                .spawn((Persist, gauge(0, i), Tag { level: None }))
                .id()
        })
        .collect();
    for step in 0..12 {
        if step > 0 {
            for (i, &e) in ents.iter().enumerate() {
                // Some entities keep their component (not dirty), some change it.
                if (i + step) % 3 != 0
                    && let Some(mut g) = world.get_mut::<Gauge>(e)
                {
                    *g = gauge(step, i);
                }
                if i % 2 == 0 {
                    world.get_mut::<Tag>(e).unwrap().level =
                        (step % 3 != 0).then_some(step as u64 * 10);
                }
            }
            // Removed and re-added: the entity group loses the component's attributes and
            // gets them back, of whatever kinds.
            if step % 4 == 1 {
                world.entity_mut(ents[3]).remove::<Gauge>();
            } else if step % 4 == 2 {
                world.entity_mut(ents[3]).insert(gauge(step, 99));
            }
        }
        let s = flush(&mut world);
        assert!(s.wrote, "step {step}");
        let mut back = World::new();
        registry().load(&mut back, &path).unwrap();
        assert_eq!(state(&mut back), state(&mut world), "step {step}");
    }
}

#[test]
fn kinds_changing_in_any_order_reload_exactly_with_a_slot_pair() {
    run(Durability::Process);
}

#[test]
fn kinds_changing_in_any_order_reload_exactly_in_one_file() {
    run(Durability::Unprotected);
}
