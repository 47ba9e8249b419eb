//! A bevy `App` that persists its world with [`H5PomPlugin`]: the file to copy from.
//!
//! ```sh
//! cargo run --example app               # creates app.h5 and plays 60 frames
//! cargo run --example app               # again: resumes app.h5 where the first run stopped
//! cargo run --example app -- --fresh    # starts over
//! ```
//!
//! What it shows, in order: one line adds the plugin (the flush runs in `Last`, after your
//! systems); bevy's own `Name` and `Transform` persist through `Reflect` (no h5pom derive),
//! your own components through `#[derive(h5pom::Object)]` (an enum, an `Option`, an entity
//! reference, a `[f32; 3]`, a `Vec` stored as a dataset); systems ask for a snapshot, a
//! checkpoint and a rollback by sending [`H5PomRequest`] messages and read the answers as
//! [`H5PomDone`] messages; a reference to an entity that is not persisted skips that one
//! component (reported as [`ComponentsSkipped`]) while everything else is written. Open
//! `app.h5` with h5py or `cargo run -p h5pom-cli -- dump app.h5 /ecs`.

use bevy_app::prelude::*;
use bevy_ecs::prelude::*;
use bevy_transform::components::Transform;
use h5pom::ecs::{
    ComponentsSkipped, FlushFailed, H5PomDone, H5PomPlugin, H5PomRequest, H5Sync, Persist, Registry,
};

/// A unit's side: stored as its name, `"Red"` or `"Blue"`.
#[derive(h5pom::Field, Clone, Copy, Debug, PartialEq)]
enum Team {
    Red,
    Blue,
}

/// Stored in the unit's group: `hp`, `regen` (`None` is kept as such), `team`, `target` (the
/// persistent id of the target, remapped on load), `tint` (a float32 attribute of shape (3,)).
#[derive(Component, h5pom::Object, Clone, Debug)]
struct Unit {
    hp: i32,
    regen: Option<f32>,
    team: Team,
    #[h5pom(entity)]
    target: Option<Entity>,
    tint: [f32; 3],
}

/// A log of the damage taken, as a 1-D dataset `Log.hits` (h5py reads it as an array).
#[derive(Component, h5pom::Object, Clone, Debug, Default)]
struct Log {
    #[h5pom(dataset)]
    hits: Vec<u32>,
}

/// The frame counter, a resource: the group `/ecs/resources/Frame`.
#[derive(Resource, h5pom::Object, Clone, Debug, Default)]
struct Frame {
    n: u64,
}

/// Updates of this run (not persisted, unlike [`Frame`], which a rollback sets back).
#[derive(Resource, Default)]
struct Updates(u64);

const UPDATES: u64 = 60;

fn registry() -> Registry {
    Registry::new()
        .reflect::<Name>() // bevy's Name, through Reflect: the attribute `Name.name`
        .reflect_table::<Transform>() // bevy's Transform as a column table
        .component::<Unit>()
        .component::<Log>()
        .resource::<Frame>()
        .hierarchy() // ChildOf: parents and children survive a reload
}

fn main() {
    let path = std::path::PathBuf::from("app.h5");
    if std::env::args().any(|a| a == "--fresh") {
        for p in ["app.h5", "app.h5.a", "app.h5.b", "app-snapshot.h5"] {
            let _ = std::fs::remove_file(p);
        }
    }
    let mut app = App::new();
    app.add_plugins(H5PomPlugin::new(&path, registry()))
        .init_resource::<Frame>()
        .init_resource::<Updates>()
        .add_systems(Startup, spawn_if_new)
        .add_systems(Update, (fight, requests).chain())
        .add_systems(PostUpdate, report);
    // A bounded run (a game would call `app.run()` with its runner instead).
    for _ in 0..UPDATES {
        app.update();
    }
    let world = app.world_mut();
    let units = world.query::<&Unit>().iter(world).count();
    let sync = world.resource::<H5Sync>();
    println!(
        "{UPDATES} updates; {} is at tick {} ({} entities persisted, {} failed flushes); \
         {units} units; game frame {}",
        path.display(),
        sync.flushes(),
        sync.persisted_entities(),
        sync.failed_flushes(),
        world.resource::<Frame>().n,
    );
    // The snapshot, reloaded into a new world: the units as they were at update 30.
    let mut other = World::new();
    match registry().load(&mut other, "app-snapshot.h5") {
        Ok(r) => {
            let mut hp: Vec<(String, i32)> = other
                .query::<(&Name, &Unit)>()
                .iter(&other)
                .map(|(n, u)| (n.to_string(), u.hp))
                .collect();
            hp.sort();
            println!("app-snapshot.h5: {} entities, hp {hp:?}", r.entities);
        }
        Err(e) => println!("app-snapshot.h5: {e}"),
    }
}

/// A new file (frame 0): spawn two squads. A resumed file already has them.
fn spawn_if_new(mut commands: Commands, frame: Res<Frame>, units: Query<(), With<Unit>>) {
    if frame.n > 0 || !units.is_empty() {
        return;
    }
    let leader = |team: Team, target: Option<Entity>| Unit {
        hp: 100,
        regen: Some(0.5),
        team,
        target,
        tint: [1.0, 0.5, 0.0],
    };
    let squad = |commands: &mut Commands, team: Team, x: f32| {
        let leader = commands
            .spawn((
                Persist,
                Name::new(format!("{team:?} leader")),
                Transform::from_xyz(x, 0.0, 0.0),
                leader(team, None),
                Log::default(),
            ))
            .id();
        for i in 0..3 {
            commands.spawn((
                Persist,
                Name::new(format!("{team:?} {i}")),
                Transform::from_xyz(x, i as f32, 0.0),
                Unit {
                    hp: 30,
                    regen: None,
                    team,
                    target: None,
                    tint: [0.2, 0.2, 0.2],
                },
                Log::default(),
                ChildOf(leader),
            ));
        }
        leader
    };
    let red = squad(&mut commands, Team::Red, -10.0);
    let blue = squad(&mut commands, Team::Blue, 10.0);
    // Leaders target each other (entity references, remapped on reload).
    commands.entity(red).insert(leader(Team::Red, Some(blue)));
    commands.entity(blue).insert(leader(Team::Blue, Some(red)));
    // A scout that is not persisted: a unit targeting it is skipped (and reported) until its
    // target changes, while every other component is written.
    commands.spawn((Name::new("scout"), Transform::default()));
}

fn fight(
    mut updates: ResMut<Updates>,
    mut frame: ResMut<Frame>,
    mut units: Query<(&Name, &mut Unit, &mut Transform, &mut Log)>,
    scout: Query<Entity, (With<Name>, Without<Persist>)>,
) {
    updates.0 += 1;
    frame.n += 1;
    let scout = scout.iter().next();
    for (name, mut u, mut t, mut log) in &mut units {
        let toward = if u.team == Team::Red { 1.0 } else { -1.0 };
        t.translation.x += 0.1 * toward;
        // Every 7th frame each unit takes a hit.
        if frame.n.is_multiple_of(7) {
            u.hp -= 3;
            log.hits.push(frame.n as u32);
        }
        // "Red 0" follows the scout (not persisted) on updates 20 to 24: its Unit is skipped
        // on those flushes and written again on update 25.
        if name.as_str() == "Red 0" {
            match updates.0 {
                20 => u.target = scout,
                25 => u.target = None,
                _ => {}
            }
        }
    }
}

/// Update 30: checkpoint and snapshot; update 45: roll back to the checkpoint (the game frame
/// goes back to 30 with every persisted entity and resource).
fn requests(updates: Res<Updates>, mut out: MessageWriter<H5PomRequest>) {
    match updates.0 {
        30 => {
            out.write(H5PomRequest::Checkpoint("update 30".into()));
            out.write(H5PomRequest::Snapshot("app-snapshot.h5".into()));
        }
        45 => {
            out.write(H5PomRequest::Rollback("update 30".into()));
        }
        _ => {}
    }
}

/// Prints the plugin's answers and reports (they arrive an update after the request).
fn report(
    updates: Res<Updates>,
    mut done: MessageReader<H5PomDone>,
    mut failed: MessageReader<FlushFailed>,
    mut skipped: MessageReader<ComponentsSkipped>,
) {
    for d in done.read() {
        println!("update {:>2}: {d:?}", updates.0);
    }
    for f in failed.read() {
        println!("update {:>2}: flush failed: {f:?}", updates.0);
    }
    for s in skipped.read() {
        println!("update {:>2}: {s:?}", updates.0);
    }
}
