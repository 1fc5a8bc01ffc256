//! Arbitrary bytes through the whole loader: YAML/JSON parsing, kind resolution, typed
//! decoding, validation and analysis must never panic, every finding must carry a location,
//! and every resource of error-free input must round-trip (serialize → load → same typed value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_config::{Loader, validate_all};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut loader = Loader::new();
    loader.load_str("fuzz.yaml", text);
    let mut result = loader.finish();
    validate_all(&mut result);
    for f in &result.findings {
        assert!(f.location.is_some(), "finding without a location: {f}");
        let _ = f.to_string();
    }
    // Round-trip only error-free input: a rejected value (a NaN percentage, say) need not
    // survive serialization.
    if result.has_errors() {
        return;
    }
    for l in &result.resources {
        let json = serde_json::to_string(&l.resource.to_json()).expect("serializable");
        let mut again = Loader::new();
        again.load_str("again.json", &json);
        let again = again.finish();
        assert_eq!(
            again.resources.len(),
            1,
            "round trip lost the object: {json}"
        );
        assert_eq!(
            again.resources[0].resource, l.resource,
            "round trip changed {json}"
        );
    }
});
