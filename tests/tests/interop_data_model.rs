//! The official data-model interop vectors (`$ATLEX_INTEROP_DIR/data-model/`).
//!
//! * `data-model-valid.json`: each case converts (through `Data::from_json_object` and through
//!   serde from JSON text and from a `serde_json::Value`) and round-trips to an equal JSON value
//!   (integer-valued floats such as `123.0` come back as integers) and through DAG-CBOR.
//! * `data-model-invalid.json`: each case fails every reader.
//! * `data-model-fixtures.json`: JSON -> `Data` -> DAG-CBOR equals `cbor_base64` byte for byte,
//!   the CID equals `cid`, and CBOR -> `Data` -> JSON equals the original JSON.
//!
//! Failures are collected and reported by case. When the vectors are missing the tests fail
//! under `CI=true` and otherwise print a skip note.
//!
//! Run: `cargo test -p atlex-tests --test interop_data_model`.

use atlex_types::data::{self, Data};
use atlex_types::{Bytes, CidLink};
use serde_json::Value;

/// Reads `data-model/<name>` from the interop directory, or `None` (skip) outside CI.
fn load(name: &str) -> Option<Vec<Value>> {
    let path = atlex_tests::data::interop_dir()?
        .join("data-model")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Array(cases)) => Some(cases),
        Ok(_) => panic!("{}: expected a JSON array of cases", path.display()),
        Err(error) => panic!("{}: invalid JSON: {error}", path.display()),
    }
}

fn note(case: &Value, index: usize) -> String {
    match case.get("note").and_then(Value::as_str) {
        Some(note) => format!("#{index} {note:?}"),
        None => format!("#{index}"),
    }
}

/// Replaces integer-valued floats (`123.0`) by integers: what a data-model round trip yields.
fn normalize_numbers(value: &Value) -> Value {
    match value {
        Value::Number(number) if !number.is_i64() && !number.is_u64() => match number.as_f64() {
            Some(float) if float.fract() == 0.0 => Value::from(float as i64),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(normalize_numbers).collect()),
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| (key.clone(), normalize_numbers(value)))
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// Deserializes JSON text as a top-level data-model object through serde.
fn object_from_text(text: &str) -> Result<Data, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let data = Data::deserialize_object(&mut deserializer)?;
    deserializer.end()?;
    Ok(data)
}

fn report(file: &str, total: usize, failures: Vec<String>) {
    assert!(total > 0, "{file}: no cases");
    assert!(
        failures.is_empty(),
        "{file}: {} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check_valid(json: &Value) -> Result<(), String> {
    let data = Data::from_json_object(json).map_err(|e| format!("from_json_object: {e}"))?;
    let any = Data::from_json(json).map_err(|e| format!("from_json: {e}"))?;
    if any != data {
        return Err("from_json and from_json_object disagree".into());
    }
    let text = json.to_string();
    let from_text = object_from_text(&text).map_err(|e| format!("serde from text: {e}"))?;
    if from_text != data {
        return Err(format!(
            "serde from text differs: {from_text:?} != {data:?}"
        ));
    }
    let from_value: Data =
        serde_json::from_value(json.clone()).map_err(|e| format!("serde from Value: {e}"))?;
    if from_value != data {
        return Err("serde from Value differs".into());
    }

    let expected = normalize_numbers(json);
    if data.to_json() != expected {
        return Err(format!("to_json: {} != {expected}", data.to_json()));
    }
    let serialized = serde_json::to_value(&data).map_err(|e| format!("serialize: {e}"))?;
    if serialized != expected {
        return Err(format!("serialize: {serialized} != {expected}"));
    }

    let cbor = data
        .to_dag_cbor()
        .map_err(|e| format!("to_dag_cbor: {e}"))?;
    let back = Data::from_dag_cbor(&cbor).map_err(|e| format!("from_dag_cbor: {e}"))?;
    if back != data {
        return Err("DAG-CBOR round trip differs".into());
    }
    Ok(())
}

#[test]
fn data_model_valid() {
    let Some(cases) = load("data-model-valid.json") else {
        return;
    };
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let result = match case.get("json") {
            Some(json) => check_valid(json),
            None => Err("case has no `json`".into()),
        };
        if let Err(why) = result {
            failures.push(format!("{}: {why}", note(case, index)));
        }
    }
    report("data-model-valid.json", cases.len(), failures);
}

fn check_invalid(json: &Value) -> Result<(), String> {
    if let Ok(data) = Data::from_json_object(json) {
        return Err(format!("from_json_object accepted it: {data:?}"));
    }
    if let Ok(data) = object_from_text(&json.to_string()) {
        return Err(format!("serde accepted it: {data:?}"));
    }
    // Apart from the top-level check, the violation is in the value itself.
    if json.is_object() {
        if let Ok(data) = Data::from_json(json) {
            return Err(format!("from_json accepted it: {data:?}"));
        }
        if let Ok(data) = serde_json::from_value::<Data>(json.clone()) {
            return Err(format!("serde from Value accepted it: {data:?}"));
        }
    }
    Ok(())
}

#[test]
fn data_model_invalid() {
    let Some(cases) = load("data-model-invalid.json") else {
        return;
    };
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let result = match case.get("json") {
            Some(json) => check_invalid(json),
            None => Err("case has no `json`".into()),
        };
        if let Err(why) = result {
            failures.push(format!("{}: {why}", note(case, index)));
        }
    }
    report("data-model-invalid.json", cases.len(), failures);
}

fn check_fixture(case: &Value) -> Result<(), String> {
    let json = case.get("json").ok_or("no `json`")?;
    let cbor_base64 = case
        .get("cbor_base64")
        .and_then(Value::as_str)
        .ok_or("no `cbor_base64`")?;
    let cid = case.get("cid").and_then(Value::as_str).ok_or("no `cid`")?;
    let expected_cbor = Bytes::from_base64(cbor_base64)
        .map_err(|e| format!("bad cbor_base64: {e}"))?
        .into_vec();
    let expected_cid = CidLink::parse(cid).map_err(|e| format!("bad cid: {e}"))?;

    // JSON -> Data -> DAG-CBOR, byte for byte, and the CID.
    let data = Data::from_json_object(json).map_err(|e| format!("from_json_object: {e}"))?;
    let cbor = data::to_dag_cbor(&data).map_err(|e| format!("to_dag_cbor: {e}"))?;
    if cbor != expected_cbor {
        return Err(format!(
            "DAG-CBOR differs:\n  got      {}\n  expected {cbor_base64}",
            Bytes(cbor).to_base64()
        ));
    }
    let computed = data::record_cid(&data).map_err(|e| format!("record_cid: {e}"))?;
    if computed != expected_cid {
        return Err(format!("CID {computed} != {expected_cid}"));
    }
    if CidLink::for_dag_cbor(&expected_cbor) != expected_cid {
        return Err("CID of the fixture bytes differs".into());
    }

    // DAG-CBOR -> Data -> JSON.
    let decoded: Data =
        data::from_dag_cbor(&expected_cbor).map_err(|e| format!("from_dag_cbor: {e}"))?;
    if decoded != data {
        return Err(format!("decoded CBOR differs: {decoded:?} != {data:?}"));
    }
    if decoded.to_json() != *json {
        return Err(format!("CBOR -> JSON: {} != {json}", decoded.to_json()));
    }
    let serialized = serde_json::to_value(&decoded).map_err(|e| format!("serialize: {e}"))?;
    if serialized != *json {
        return Err(format!("CBOR -> serde JSON: {serialized} != {json}"));
    }
    Ok(())
}

#[test]
fn data_model_fixtures() {
    let Some(cases) = load("data-model-fixtures.json") else {
        return;
    };
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        if let Err(why) = check_fixture(case) {
            failures.push(format!("fixture #{index}: {why}"));
        }
    }
    report("data-model-fixtures.json", cases.len(), failures);
}
