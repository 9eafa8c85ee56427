//! Property tests: the decoder never panics, whatever the hub delivers.

use beacon::graph::notification::decode;
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("created"),
            Just("updated"),
            Just("Validation: x"),
            Just("missed"),
            Just("chats('19:a@thread.v2')/messages('1')"),
            Just("chats/"),
            Just("chats('"),
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("value".to_string()),
            Just("changeType".to_string()),
            Just("resource".to_string()),
            Just("subscriptionId".to_string()),
            Just("clientState".to_string()),
            Just("lifecycleEvent".to_string()),
            Just("encryptedContent".to_string()),
            Just("resourceData".to_string()),
            Just("@odata.id".to_string()),
            Just("data".to_string()),
            ".{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys, inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let body = serde_json::json!({ "value": [value.clone()] }).to_string();
        let _ = decode(body.as_bytes());
        let _ = decode(value.to_string().as_bytes());
    }
}
