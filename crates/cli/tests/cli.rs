//! End-to-end tests of the `h5pom` binary: `ls`, `dump` (text and JSON, with and without
//! values), files of the original h5pom's layout, and error handling.

mod common;

use common::{dump_json, fails, h5pom, ok, original_file, rust_file};
use serde_json::{Value as Json, json};

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

#[test]
fn ls_lists_root_and_object_entries_sorted_with_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let f = rust_file(dir.path());
    assert_eq!(
        ok(["ls", s(&f)]),
        "ring    object  Node\n\
         run-1   folder  -\n\
         sample  object  Sample\n"
    );
    // Same for an explicit `/`, and stable from one run to the next.
    assert_eq!(ok(["ls", s(&f), "/"]), ok(["ls", s(&f)]));
    assert_eq!(
        ok(["ls", s(&f), "/sample"]),
        "big        dataset  -      int64 [1000]\n\
         counts     dataset  -      uint16 [3]\n\
         pets-cat   object   Probe\n\
         positions  dataset  -      float32 [2, 3]\n\
         probe      object   Probe\n\
         probes-0   link     Probe  -> /sample/probe\n\
         probes-1   link     Probe  -> /sample/pets-cat\n"
    );
    // A dataset lists as itself; a path without leading slash works.
    assert_eq!(
        ok(["ls", s(&f), "sample/counts"]),
        "counts  dataset  -  uint16 [3]\n"
    );
}

#[test]
fn dump_text_is_an_indented_tree_with_links() {
    let dir = tempfile::tempdir().unwrap();
    let f = rust_file(dir.path());
    assert_eq!(
        ok(["dump", s(&f), "/ring"]),
        "/ring <Node>\n  label = \"a\"  (str)\n  next <Node>\n    label = \"b\"  (str)\n    next -> /ring\n"
    );
    let text = ok(["dump", s(&f)]);
    for line in [
        "/ (folder)\n",
        "\n  owner = \"lab\"  (str)\n",
        "\n  run-1 (folder)\n    p <Probe>\n      name = \"in a folder\"  (str)\n      position = 1.25  (float64)\n",
        "\n  sample <Sample>\n",
        "\n    born = 1990-01-02  (date)\n",
        "\n    missing = None\n",
        "\n    zero = 0  (int64)\n",
        "\n    ratio = 0.1  (float32)\n",
        "\n    nan = NaN  (float64)\n",
        "\n    tags = [\"zeta\", \"alpha\", \"mid\"]  (list of 3)\n",
        "\n    scores = {a: -1, b: 2.5}  (dict of 2)\n",
        "\n    positions: dataset float32 [2, 3], chunks [2, 3]\n",
        "\n    probe -> /sample/probes-0\n",
        "\n    probes[0] <Probe>\n      name = \"p0\"  (str)\n      position = None\n",
        "\n    probes[1] <Probe>\n",
        "\n    pets{cat} -> /sample/probes-1\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("chunks [2, 3] = "),
        "values printed without --values"
    );
    let with_values = ok(["dump", s(&f), "/sample", "--values=4"]);
    assert!(
        with_values.contains(
            "positions: dataset float32 [2, 3], chunks [2, 3] = [1.5, 2, 2.5, 3, …]  (4 of 6 values)\n"
        ),
        "{with_values}"
    );
    assert!(with_values.contains("counts: dataset uint16 [3], chunks [3] = [7, 8, 9]\n"));
}

#[test]
fn dump_json_keeps_every_distinction() {
    let dir = tempfile::tempdir().unwrap();
    let f = rust_file(dir.path());
    let doc = dump_json(&f, &[]);
    assert_eq!(doc["format"], "h5pom-dump");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["path"], "/");
    assert_eq!(doc["format_version"], 1);
    assert!(doc.get("array").is_none());
    let root = &doc["object"];
    assert_eq!(root["tag"], Json::Null);
    assert_eq!(root["attrs"], json!({ "owner": "lab" }));
    // Root entries are names, not families: `run-1` is not the dict `run`.
    let names: Vec<&String> = root["children"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["ring", "run-1", "sample"]);
    assert_eq!(root["object_dicts"], json!({}));

    let sample = &root["children"]["sample"];
    assert_eq!(sample["path"], "/sample");
    assert_eq!(sample["tag"], "Sample");
    let attrs = &sample["attrs"];
    assert_eq!(attrs["label"], "first");
    assert_eq!(attrs["count"], 3);
    assert!(attrs["count"].is_i64());
    assert_eq!(attrs["zero"], 0, "Some(0) is 0");
    assert_eq!(attrs["missing"], Json::Null, "None is null");
    assert_eq!(attrs["born"], json!({ "date": "1990-01-02" }));
    assert_eq!(
        attrs["seen"],
        json!({ "datetime": "2024-02-29T13:04:05.250" })
    );
    assert_eq!(
        attrs["ratio"].as_f64(),
        Some(0.1),
        "float32 printed shortest"
    );
    assert_eq!(attrs["nan"], json!({ "float": "NaN" }));
    assert_eq!(sample["lists"]["tags"], json!(["zeta", "alpha", "mid"]));
    let scores = sample["dicts"]["scores"].as_object().unwrap();
    assert_eq!(scores.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(scores["a"].as_f64(), Some(-1.0));
    assert!(scores["a"].is_f64(), "floats stay floats");
    assert_eq!(
        sample["arrays"]["positions"],
        json!({ "dtype": "float32", "shape": [2, 3], "chunks": [2, 3] })
    );
    assert_eq!(sample["arrays"]["counts"]["dtype"], "uint16");
    assert_eq!(sample["arrays"]["big"]["shape"], json!([1000]));

    // Shared objects appear once, then as links to the first path reached.
    let probes = sample["object_lists"]["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2);
    assert_eq!(probes[0]["tag"], "Probe");
    assert_eq!(probes[0]["path"], "/sample/probes-0");
    assert_eq!(
        probes[0]["attrs"],
        json!({ "name": "p0", "position": null })
    );
    assert_eq!(probes[1]["attrs"]["name"], "cat");
    assert_eq!(probes[1]["attrs"]["position"], 0.0);
    assert_eq!(
        sample["children"]["probe"],
        json!({ "link": "/sample/probes-0" })
    );
    assert_eq!(
        sample["object_dicts"]["pets"],
        json!({ "cat": { "link": "/sample/probes-1" } })
    );
    // The cycle ends at a link back to its start.
    let ring = &root["children"]["ring"];
    assert_eq!(ring["children"]["next"]["attrs"]["label"], "b");
    assert_eq!(
        ring["children"]["next"]["children"]["next"],
        json!({ "link": "/ring" })
    );
    // An object always has all nine keys.
    let mut keys: Vec<&String> = sample.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "arrays",
            "attrs",
            "children",
            "dicts",
            "lists",
            "object_dicts",
            "object_lists",
            "path",
            "tag"
        ]
    );
}

#[test]
fn dump_json_values_are_capped_unless_all() {
    let dir = tempfile::tempdir().unwrap();
    let f = rust_file(dir.path());
    let doc = dump_json(&f, &["/sample", "--values=all"]);
    assert_eq!(doc["path"], "/sample");
    let arrays = &doc["object"]["arrays"];
    assert_eq!(
        arrays["positions"]["values"],
        json!([1.5, 2.0, 2.5, 3.0, 3.5, { "float": "inf" }])
    );
    assert_eq!(arrays["positions"]["truncated"], false);
    assert_eq!(arrays["counts"]["values"], json!([7, 8, 9]));
    assert_eq!(arrays["big"]["values"].as_array().unwrap().len(), 1000);
    assert_eq!(arrays["big"]["values"][999], 999);

    // Default: the first 100 values.
    let doc = dump_json(&f, &["--values"]);
    let big = &doc["object"]["children"]["sample"]["arrays"]["big"];
    let values = big["values"].as_array().unwrap();
    assert_eq!(values.len(), 100);
    assert_eq!(values[99], 99);
    assert_eq!(big["truncated"], true);

    // A rank-2 prefix, and zero values.
    let doc = dump_json(&f, &["/sample", "--values=4"]);
    let pos = &doc["object"]["arrays"]["positions"];
    assert_eq!(pos["values"], json!([1.5, 2.0, 2.5, 3.0]));
    assert_eq!(pos["truncated"], true);
    let doc = dump_json(&f, &["/sample", "--values=0"]);
    assert_eq!(doc["object"]["arrays"]["counts"]["values"], json!([]));

    // A dataset path dumps just that array.
    let doc = dump_json(&f, &["/sample/counts", "--values=all"]);
    assert!(doc.get("object").is_none());
    assert_eq!(
        doc["array"],
        json!({ "dtype": "uint16", "shape": [3], "chunks": [3], "values": [7, 8, 9], "truncated": false })
    );
}

#[test]
fn original_h5pom_layout_loads_without_types() {
    let dir = tempfile::tempdir().unwrap();
    let f = original_file(dir.path());
    assert_eq!(
        ok(["ls", s(&f), "/joe"]),
        "best       object   Person\n\
         data       dataset  -       float64 [2, 3]\n\
         friends-0  link     Person  -> /joe/best\n"
    );
    assert_eq!(
        ok(["dump", s(&f)]),
        "/ (folder)\n\
         \x20 joe <Person>\n\
         \x20   age = 25  (int64)\n\
         \x20   born = 1990-01-02  (date)\n\
         \x20   name = \"Joe\"  (str)\n\
         \x20   nick = None\n\
         \x20   tags = [\"x\", \"y\"]  (list of 2)\n\
         \x20   data: dataset float64 [2, 3], chunks [1, 3]\n\
         \x20   best -> /joe/friends-0\n\
         \x20   friends[0] <Person>\n\
         \x20     name = \"Ann\"  (str)\n\
         \x20     back -> /joe\n"
    );
    let doc = dump_json(&f, &["--values=all"]);
    assert_eq!(doc["format_version"], Json::Null);
    let joe = &doc["object"]["children"]["joe"];
    assert_eq!(joe["tag"], "Person");
    assert_eq!(
        joe["attrs"],
        json!({ "age": 25, "born": { "date": "1990-01-02" }, "name": "Joe", "nick": null })
    );
    assert_eq!(joe["lists"], json!({ "tags": ["x", "y"] }));
    assert_eq!(
        joe["arrays"]["data"]["values"],
        json!([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    );
    assert_eq!(joe["children"]["best"], json!({ "link": "/joe/friends-0" }));
    let ann = &joe["object_lists"]["friends"][0];
    assert_eq!(ann["attrs"], json!({ "name": "Ann" }));
    assert_eq!(ann["children"]["back"], json!({ "link": "/joe" }));
}

#[test]
fn errors_exit_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = rust_file(dir.path());
    let missing = dir.path().join("missing.h5");
    assert!(fails(["ls", s(&missing)]).contains("not found"));
    assert!(fails(["dump", s(&missing), "--json"]).contains("not found"));

    let junk = dir.path().join("junk.h5");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&junk, bytes).unwrap();
    assert!(fails(["dump", s(&junk)]).contains("not an HDF5 file"));
    let empty = dir.path().join("empty.h5");
    std::fs::write(&empty, b"").unwrap();
    fails(["ls", s(&empty)]);
    fails(["ls", s(dir.path())]);

    for bad in [
        "/nope",
        "/sample/nope",
        "/sample/big/x",
        "/sample/..",
        "/h5pom-format-version",
    ] {
        let msg = fails(["dump", s(&f), bad]);
        assert!(msg.contains("no such path"), "{bad}: {msg}");
        fails(["ls", s(&f), bad]);
    }
}

#[test]
fn bad_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = rust_file(dir.path());
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["ls"],
        vec!["dump", s(&f), "--values=lots"],
        vec!["dump", s(&f), "--values=-3"],
    ] {
        let out = h5pom(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    assert_eq!(h5pom(["--help"]).status.code(), Some(0));
}

#[test]
fn check_probes_in_a_child_and_says_how_reading_ended() {
    let dir = tempfile::tempdir().unwrap();
    let f = rust_file(dir.path());
    let out = h5pom(["check", s(&f)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("readable"));
    // Fixed-length strings, a hard link to a sub-object and a cycle back to an ancestor: each
    // object opened once, everything read.
    let orig = original_file(dir.path());
    for full in [&[][..], &["--full"][..]] {
        let out = h5pom(["check"].iter().chain(full).chain([&s(&orig)]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(
            text.contains(
                "readable (3 groups, 1 datasets, 0 other objects opened; 13 attributes read"
            ),
            "{text}"
        );
    }

    // A file h5pom refuses: exit 1, and the reason (the same typed error an open gives).
    let junk = dir.path().join("junk.h5");
    std::fs::write(&junk, b"not an HDF5 file at all").unwrap();
    let out = h5pom(["check", "--timeout", "20", s(&junk)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("NOT readable (rejected cleanly): not an HDF5 file"),
        "{text}"
    );

    // A missing file is rejected too; a zero timeout is a bad argument.
    let out = h5pom(["check", s(&dir.path().join("missing.h5"))]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        h5pom(["check", "--timeout", "0", s(&f)]).status.code(),
        Some(2)
    );
}

#[test]
fn recover_refuses_what_is_not_a_synced_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = rust_file(dir.path());
    assert!(fails(["recover", s(&dir.path().join("missing.h5"))]).contains("not found"));
    // An h5pom file without the ECS layout: no tick to recover to.
    assert!(fails(["recover", s(&f)]).contains("/ecs"));
}

#[test]
fn a_locked_file_is_reported_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let f = rust_file(dir.path());
    // An exclusive `flock` on another descriptor, as a writer in another process holds one.
    let holder = std::fs::File::open(&f).unwrap();
    holder.lock().unwrap();
    let msg = fails(["ls", s(&f)]);
    assert!(msg.contains("it is locked"), "{msg}");
    holder.unlock().unwrap();
    ok(["ls", s(&f)]);
}
