//! Lists of numbers as one 1-D attribute (`set_attr` with `Value::List`): the element type is
//! kept, a rewrite of the same type and length is in place, anything else is refused.

use h5pom_store::reexports::hdf5::types::{FloatSize, TypeDescriptor};
use h5pom_store::{Error, File, Schema, Value, get_attr, set_attr};

#[test]
fn number_lists_are_one_dimensional_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let f = File::create(dir.path().join("l.h5"), Schema::new()).unwrap();
    let g = f.hdf5().group("/").unwrap();
    let xs = [0.1f32, -0.0, 1e-40];
    let list = Value::List(xs.iter().copied().map(Value::F32).collect());
    set_attr(&g, "/", "v", &list).unwrap();
    let a = g.attr("v").unwrap();
    assert_eq!(a.shape(), [3]);
    assert_eq!(
        a.dtype().unwrap().to_descriptor().unwrap(),
        TypeDescriptor::Float(FloatSize::U4)
    );
    assert_eq!(
        a.read_raw::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>(),
        xs.map(f32::to_bits)
    );
    drop(a);
    // Read back as a list at the stored width.
    let Some(Value::List(back)) = get_attr(&g, "/", "v").unwrap() else {
        panic!("not a list");
    };
    assert_eq!(back, xs.map(Value::F32));
    // Same type and length: in place; another length or type: recreated.
    set_attr(&g, "/", "v", &Value::List(vec![Value::F32(2.0); 3])).unwrap();
    assert_eq!(g.attr("v").unwrap().read_raw::<f32>().unwrap(), [2.0; 3]);
    set_attr(
        &g,
        "/",
        "v",
        &Value::List(vec![Value::I16(-3), Value::I16(4)]),
    )
    .unwrap();
    let a = g.attr("v").unwrap();
    assert_eq!(a.shape(), [2]);
    assert_eq!(a.read_raw::<i16>().unwrap(), [-3, 4]);
    // Mixed, empty and non-numeric lists are refused; the attribute is untouched.
    for bad in [
        Value::List(vec![Value::F32(1.0), Value::F64(1.0)]),
        Value::List(vec![]),
        Value::List(vec![Value::Str("a".into())]),
    ] {
        assert!(
            matches!(
                set_attr(&g, "/", "v", &bad),
                Err(Error::TypeMismatch { .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(g.attr("v").unwrap().read_raw::<i16>().unwrap(), [-3, 4]);
}
