//! Field kinds beyond scalars, arrays and references, in object groups: fixed-size arrays,
//! nested plain structs (`#[derive(Field)]`), enums (unit variants as names, variants with
//! data as a tag plus flattened fields), with typed errors for what a file cannot hold.

use h5pom::{Error, Field, File, Object, Schema};

#[derive(Field, Clone, Debug, PartialEq)]
struct Pose {
    x: f64,
    y: f64,
    heading: Option<f32>,
}

#[derive(Field, Clone, Debug, PartialEq)]
struct Frame {
    origin: Pose,
    axes: [f32; 3],
}

#[derive(Field, Clone, Copy, Debug, PartialEq)]
enum Mode {
    Idle,
    Running,
}

#[derive(Field, Clone, Debug, PartialEq)]
enum Shape {
    Circle { r: f64 },
    Rect { w: f64, h: f64 },
    Tagged(String, u8),
    Empty,
}

#[derive(Object, Clone, Debug, PartialEq)]
struct Robot {
    name: String,
    pos: [f32; 3],
    flags: [bool; 2],
    pose: Pose,
    frame: Frame,
    mode: Mode,
    modes: Vec<Mode>,
    shape: Shape,
}

fn robot() -> Robot {
    Robot {
        name: "r2".into(),
        pos: [1.0, -2.5, 3.25],
        flags: [true, false],
        pose: Pose {
            x: 1.0,
            y: 2.0,
            heading: None,
        },
        frame: Frame {
            origin: Pose {
                x: -1.0,
                y: -2.0,
                heading: Some(0.5),
            },
            axes: [0.0, 1.0, 0.0],
        },
        mode: Mode::Running,
        modes: vec![Mode::Idle, Mode::Running],
        shape: Shape::Rect { w: 2.0, h: 3.0 },
    }
}

#[test]
fn arrays_nested_structs_and_enums_round_trip_with_flat_names() {
    let f = File::in_memory(Schema::new().with::<Robot>()).unwrap();
    let mut v = robot();
    let h = f.root().insert("r", &v).unwrap();
    assert_eq!(h.load().unwrap(), v);
    let folder = h.as_folder();
    assert_eq!(
        folder.attr::<[f32; 3]>("pos").unwrap(),
        Some([1.0, -2.5, 3.25])
    );
    assert_eq!(
        folder.attr::<[bool; 2]>("flags").unwrap(),
        Some([true, false])
    );
    assert_eq!(folder.attr::<f64>("pose.x").unwrap(), Some(1.0));
    assert_eq!(
        folder.attr::<Option<f32>>("pose.heading").unwrap(),
        Some(None)
    );
    assert_eq!(folder.attr::<f64>("frame.origin.y").unwrap(), Some(-2.0));
    assert_eq!(
        folder.attr::<[f32; 3]>("frame.axes").unwrap(),
        Some([0.0, 1.0, 0.0])
    );
    assert_eq!(
        folder.attr::<String>("mode").unwrap(),
        Some("Running".into())
    );
    assert_eq!(
        folder.attr::<String>("modes-0").unwrap(),
        Some("Idle".into())
    );
    assert_eq!(folder.attr::<String>("shape").unwrap(), Some("Rect".into()));
    assert_eq!(folder.attr::<f64>("shape.h").unwrap(), Some(3.0));
    // The attribute is one 1-D float32 array, as h5py reads it.
    let g = f.hdf5().group("r").unwrap();
    let a = g.attr("pos").unwrap();
    assert_eq!(a.shape(), [3]);
    assert_eq!(a.read_raw::<f32>().unwrap(), [1.0, -2.5, 3.25]);

    // Another variant: its fields replace the old variant's.
    for shape in [
        Shape::Circle { r: 0.5 },
        Shape::Tagged("t".into(), 7),
        Shape::Empty,
    ] {
        v.shape = shape;
        h.save(&v).unwrap();
        assert_eq!(h.load().unwrap(), v);
        let g = f.hdf5().group("r").unwrap();
        let fields: Vec<String> = g
            .attr_names()
            .unwrap()
            .into_iter()
            .filter(|n| n.starts_with("shape."))
            .collect();
        let want: &[&str] = match &v.shape {
            Shape::Circle { .. } => &["shape.r"],
            Shape::Tagged(..) => &["shape.0", "shape.1"],
            _ => &[],
        };
        let mut fields = fields;
        fields.sort();
        assert_eq!(fields, want);
    }
}

#[test]
fn unknown_variant_and_wrong_array_length_are_typed_errors() {
    let f = File::in_memory(Schema::new().with::<Robot>()).unwrap();
    let h = f.root().insert("r", &robot()).unwrap();
    let folder = h.as_folder();
    folder.set_attr("mode", &"Flying".to_owned()).unwrap();
    match h.load() {
        Err(Error::TypeMismatch {
            field,
            expected,
            found,
            ..
        }) => {
            assert_eq!(field, "mode");
            assert!(expected.contains("\"Idle\", \"Running\""), "{expected}");
            assert_eq!(found, "\"Flying\"");
        }
        other => panic!("{other:?}"),
    }
    folder.set_attr("mode", &"Idle".to_owned()).unwrap();
    folder.set_attr("shape", &"Hexagon".to_owned()).unwrap();
    match h.load() {
        Err(Error::TypeMismatch {
            field, expected, ..
        }) => {
            assert_eq!(field, "shape");
            assert!(expected.contains("\"Circle\", \"Rect\", \"Tagged\", \"Empty\""));
        }
        other => panic!("{other:?}"),
    }
    folder.set_attr("shape", &"Empty".to_owned()).unwrap();
    folder.set_attr("pos", &[1.0f32, 2.0]).unwrap();
    match h.load() {
        Err(Error::TypeMismatch { field, found, .. }) => {
            assert_eq!(field, "pos");
            assert_eq!(found, "a list of 2 items");
        }
        other => panic!("{other:?}"),
    }
    folder.set_attr("pos", &[1.0f32, 2.0, 3.0]).unwrap();
    assert_eq!(h.load().unwrap().pos, [1.0, 2.0, 3.0]);
}
