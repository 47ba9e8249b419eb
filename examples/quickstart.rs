//! Writes a small h5pom file, reads it back, and prints what the inspector would see.
//! (The main example is `examples/sim`.)

use h5pom::{File, LazyArray, Object, Schema, Shared};
use ndarray::{Array2, Ix2};

#[derive(Object, Clone, Debug)]
struct Probe {
    name: String,
    position: Option<f64>,
}

#[derive(Object)]
struct Cloud {
    label: String,
    positions: LazyArray<f32, Ix2>,
    probes: Vec<Shared<Probe>>,
    tags: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "quickstart.h5".into());
    let schema = Schema::new().with::<Probe>().with::<Cloud>();
    let file = File::create(&path, schema.clone())?;
    let probe = Shared::new(Probe {
        name: "p0".into(),
        position: None,
    });
    let positions = Array2::from_shape_fn((1000, 3), |(i, j)| (i * 3 + j) as f32 * 0.5);
    let cloud = Cloud {
        label: "cloud-a".into(),
        positions: LazyArray::new(positions.clone()),
        probes: vec![probe.clone(), probe],
        tags: vec!["hot".into(), "dense".into()],
    };
    file.root().insert("cloud", &cloud)?;
    file.close()?;

    let file = File::open_read_only(&path, schema)?;
    let back = file.root().load::<Cloud>("cloud")?;
    assert_eq!(back.positions.get()?, &positions);
    assert!(Shared::ptr_eq(&back.probes[0], &back.probes[1]));
    println!(
        "wrote and re-read {path}: {} x {} positions, {} probes (shared: {}), tags {:?}",
        back.positions.shape()[0],
        back.positions.shape()[1],
        back.probes.len(),
        Shared::ptr_eq(&back.probes[0], &back.probes[1]),
        back.tags
    );
    Ok(())
}
