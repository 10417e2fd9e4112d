//! The adapter reads a tensor back to the host in one place only, the
//! counted `read_back` that `host_reads()` reports (`tests/wgpu.rs` counts
//! its calls during steps), and in burn's optimiser record, which `Rule`'s
//! state fills when burn saves it. This test holds the source to that: any
//! other call of burn's read-back methods fails it.

#[test]
fn every_read_back_goes_through_the_counted_function() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // burn's tensor read-backs (`TensorData`'s own `to_vec` is on the host).
    let reads = ["into_data(", "to_data(", "into_scalar", "into_vec"];
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if reads.iter().any(|r| code.contains(r)) {
                found.push(format!(
                    "{}:{}: {}",
                    path.file_name().unwrap().to_string_lossy(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    found.sort();
    let allowed = |f: &String| {
        (f.starts_with("optimizer.rs") && f.ends_with("t.into_data()"))
            || (f.starts_with("rule.rs") && f.contains("push_tensor(prefix"))
    };
    let others: Vec<&String> = found.iter().filter(|f| !allowed(f)).collect();
    assert!(others.is_empty(), "reads outside read_back: {others:#?}");
    assert_eq!(found.len(), 2, "{found:#?}");
}
