//! Unique keys: a hash of the job kind and canonical JSON of its arguments (or some of them).

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::job::UniqueBy;

/// Writes `value` as canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace,
/// strings escaped by serde_json. Independent of serde_json's map ordering feature.
pub(crate) fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The unique key of a run of `kind` with arguments `args`, or `None` for `UniqueBy::JobId`.
pub(crate) fn unique_key(
    kind: &'static str,
    unique_by: UniqueBy,
    args: &Value,
) -> Result<Option<String>, Error> {
    let keyed = match unique_by {
        UniqueBy::JobId => return Ok(None),
        UniqueBy::Args => args.clone(),
        UniqueBy::Fields(fields) => {
            let Value::Object(map) = args else {
                return Err(Error::UniqueNotObject { kind });
            };
            let mut subset = serde_json::Map::new();
            for &field in fields {
                let v = map.get(field).ok_or(Error::UniqueField { kind, field })?;
                subset.insert(field.to_owned(), v.clone());
            }
            Value::Object(subset)
        }
    };
    let mut canonical = String::new();
    canonical_json(&keyed, &mut canonical);
    let mut hasher = Sha256::new();
    // Length-prefix the kind so that kind and arguments can never run into each other.
    hasher.update((kind.len() as u64).to_be_bytes());
    hasher.update(kind.as_bytes());
    hasher.update(canonical.as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(hex, "{b:02x}");
    }
    Ok(Some(hex))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        let mut s = String::new();
        canonical_json(&v, &mut s);
        s
    }

    #[test]
    fn object_keys_are_sorted_at_every_depth() {
        assert_eq!(
            canon(json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": null}})),
            r#"{"a":{"c":null,"z":[1,{"x":3,"y":2}]},"b":1}"#
        );
    }

    #[test]
    fn keys_are_unambiguous() {
        let a = unique_key("K", UniqueBy::Args, &json!(["ab"])).unwrap();
        let b = unique_key("K", UniqueBy::Args, &json!(["a", "b"])).unwrap();
        assert_ne!(a, b);
        let c = unique_key("K", UniqueBy::Args, &json!({"a": "b,c"})).unwrap();
        let d = unique_key("K", UniqueBy::Args, &json!({"a": "b", "c": null})).unwrap();
        assert_ne!(c, d);
    }

    #[test]
    fn key_depends_on_kind_and_not_on_key_order() {
        let x = unique_key("A", UniqueBy::Args, &json!({"p": 1, "q": 2})).unwrap();
        let y = unique_key("A", UniqueBy::Args, &json!({"q": 2, "p": 1})).unwrap();
        let z = unique_key("B", UniqueBy::Args, &json!({"p": 1, "q": 2})).unwrap();
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_eq!(x.as_deref().map(str::len), Some(64));
    }

    #[test]
    fn job_id_uniqueness_has_no_key() {
        assert_eq!(unique_key("A", UniqueBy::JobId, &json!({})).unwrap(), None);
    }

    #[test]
    fn field_subsets_ignore_other_fields_and_need_the_fields() {
        let by = UniqueBy::Fields(&["order"]);
        let x = unique_key("A", by, &json!({"order": 7, "note": "x"})).unwrap();
        let y = unique_key("A", by, &json!({"order": 7, "note": "y"})).unwrap();
        let z = unique_key("A", by, &json!({"order": 8, "note": "x"})).unwrap();
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert!(matches!(
            unique_key("A", by, &json!({"note": 1})),
            Err(Error::UniqueField { field: "order", .. })
        ));
        assert!(matches!(
            unique_key("A", by, &json!([1])),
            Err(Error::UniqueNotObject { .. })
        ));
    }
}
