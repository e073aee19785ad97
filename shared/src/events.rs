//! S3 "object created" notifications, however they arrive.
//!
//! A notification can reach dispatch directly, inside SQS, inside SNS, inside SNS inside
//! SQS, or from EventBridge. The structs here are deliberately tolerant: moto omits
//! `userIdentity`, `requestParameters` and `sequencer`, which the usual crates require.

use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::Value;

/// One object that landed in a bucket, with its key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    /// The bucket the object landed in.
    pub bucket: String,
    /// The object's key, decoded (`+` and `%20` are spaces).
    pub key: String,
    /// Its size, when the event says.
    pub size: Option<i64>,
    /// Its ETag, when the event says: the version a bucket without versioning has.
    pub etag: Option<String>,
    /// Its version id, on a versioned bucket.
    pub version_id: Option<String>,
    /// S3's ordering of events for one key, kept in the ledger.
    pub sequencer: Option<String>,
    /// Who wrote it (`userIdentity.principalId`, EventBridge's `requester`), when the
    /// event says: dispatch refuses a writer a tenant does not allow.
    pub principal: Option<String>,
}

/// The objects carried by one unit of delivery: an SQS message (with its id, for a
/// partial batch response) or the whole invocation for the other sources.
#[derive(Debug)]
pub struct Delivery {
    /// The SQS message it came in, to report a failure for; `None` when not from SQS.
    pub message_id: Option<String>,
    /// Its objects, or why the delivery cannot be read.
    pub objects: Result<Vec<ObjectCreated>, EventError>,
}

/// Why a notification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("message body is not JSON: {0}")]
    /// The body is not JSON.
    NotJson(String),
    #[error("not an S3, SQS, SNS or EventBridge event: {0}")]
    /// JSON of no event shape bronze knows.
    Unrecognised(String),
    #[error("malformed S3 record: {0}")]
    /// An S3 record without its bucket or key.
    BadRecord(String),
    #[error("object key {key:?} is not valid percent-encoded UTF-8")]
    /// A key whose percent-encoding is not valid UTF-8.
    BadKey {
        /// The key as the event wrote it.
        key: String,
    },
}

/// Splits an invocation payload into deliveries, each with its objects.
///
/// SQS messages are kept apart so that one unreadable message fails alone.
pub fn deliveries(event: &Value) -> Vec<Delivery> {
    let sqs_records = event
        .get("Records")
        .and_then(Value::as_array)
        .filter(|records| {
            records
                .iter()
                .all(|r| r.get("eventSource") == Some(&"aws:sqs".into()))
        });
    match sqs_records {
        Some(records) if !records.is_empty() => records.iter().map(sqs_delivery).collect(),
        _ => vec![Delivery {
            message_id: None,
            objects: notification(event),
        }],
    }
}

fn sqs_delivery(record: &Value) -> Delivery {
    let message_id = record
        .get("messageId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = record
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let objects = serde_json::from_str::<Value>(body)
        .map_err(|e| EventError::NotJson(e.to_string()))
        .and_then(|inner| notification(&inner));
    Delivery {
        message_id,
        objects,
    }
}

/// Reads any notification other than the SQS batch itself.
fn notification(event: &Value) -> Result<Vec<ObjectCreated>, EventError> {
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if event.get("detail-type").is_some() {
        return eventbridge(event);
    }
    if event.get("Type").and_then(Value::as_str) == Some("Notification") {
        return sns_message(event.get("Message"));
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return Err(EventError::Unrecognised(summary(event)));
    };
    let mut objects = Vec::new();
    for record in records {
        if let Some(sns) = record.get("Sns") {
            objects.extend(sns_message(sns.get("Message"))?);
        } else if record.get("s3").is_some() {
            objects.extend(s3_record(record)?);
        } else {
            return Err(EventError::Unrecognised(summary(record)));
        }
    }
    Ok(objects)
}

fn sns_message(message: Option<&Value>) -> Result<Vec<ObjectCreated>, EventError> {
    let text = message.and_then(Value::as_str).unwrap_or_default();
    let inner: Value =
        serde_json::from_str(text).map_err(|e| EventError::NotJson(e.to_string()))?;
    notification(&inner)
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    #[serde(rename = "userIdentity", default)]
    user_identity: Option<UserIdentity>,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct UserIdentity {
    #[serde(rename = "principalId")]
    principal_id: Option<String>,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: BucketRef,
    object: ObjectRef,
}

#[derive(Deserialize)]
struct BucketRef {
    name: String,
}

#[derive(Deserialize)]
struct ObjectRef {
    key: String,
    size: Option<i64>,
    #[serde(alias = "eTag", alias = "etag")]
    etag: Option<String>,
    #[serde(alias = "versionId", alias = "version-id")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// An S3 record, skipping removals and folder markers. S3 form-encodes keys.
fn s3_record(record: &Value) -> Result<Option<ObjectCreated>, EventError> {
    let record = S3Record::deserialize(record).map_err(|e| EventError::BadRecord(e.to_string()))?;
    if !record.event_name.starts_with("ObjectCreated") {
        return Ok(None);
    }
    let principal = record.user_identity.and_then(|u| u.principal_id);
    object(record.s3.bucket.name, record.s3.object, principal)
}

#[derive(Deserialize)]
struct EventBridgeDetail {
    bucket: BucketRef,
    object: ObjectRef,
    requester: Option<String>,
}

/// An EventBridge "Object Created" event; other detail types carry nothing to load.
fn eventbridge(event: &Value) -> Result<Vec<ObjectCreated>, EventError> {
    if event.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
        return Ok(Vec::new());
    }
    let detail = event.get("detail").cloned().unwrap_or_default();
    let detail =
        EventBridgeDetail::deserialize(detail).map_err(|e| EventError::BadRecord(e.to_string()))?;
    Ok(object(detail.bucket.name, detail.object, detail.requester)?
        .into_iter()
        .collect())
}

fn object(
    bucket: String,
    object: ObjectRef,
    principal: Option<String>,
) -> Result<Option<ObjectCreated>, EventError> {
    let key = decode_key(&object.key)?;
    if key.ends_with('/') {
        return Ok(None);
    }
    Ok(Some(ObjectCreated {
        bucket,
        key,
        size: object.size,
        etag: object.etag.map(|e| e.trim_matches('"').to_owned()),
        version_id: object.version_id.filter(|v| !v.is_empty() && v != "null"),
        sequencer: object.sequencer,
        principal: principal.filter(|p| !p.is_empty()),
    }))
}

/// Form-decodes a key: `+` is a space, then `%XX` (including `%2F` and `%2B`).
pub fn decode_key(raw: &str) -> Result<String, EventError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| EventError::BadKey {
            key: raw.to_owned(),
        })
}

fn summary(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Every dispatch sample, with the decoded keys per delivery it must yield.
    const SAMPLES: &[(&str, &[&[&str]])] = &[
        ("s3-put.json", &[&["acme/orders/2026 11/a+b.csv"]]),
        ("s3-put-moto.json", &[&["acme/orders/2026 11/a+b.csv"]]),
        (
            "s3-put-localstack.json",
            &[&["acme/orders/2026 11/a+b.csv"]],
        ),
        (
            "sqs-s3.json",
            &[
                &[
                    "acme/orders/2026/11/orders-1.csv",
                    "tenant=acme/dataset=customers/part-0001.ndjson",
                ],
                &["acme/orders/orders-2.csv.gz"],
            ],
        ),
        (
            "sns-s3.json",
            &[&["tenant=acme/dataset=orders/date=2026-11-23/part-0000.csv"]],
        ),
        (
            "sqs-sns-s3.json",
            &[&["acme/orders/2026/11/orders 2026-11-23 (final).json"]],
        ),
        (
            "eventbridge-object-created.json",
            &[&["acme/orders/2026/11/daily export (1).csv"]],
        ),
        ("sqs-s3-test-event.json", &[&[]]),
        ("s3-folder-marker.json", &[&[]]),
        (
            "s3-bad-names.json",
            &[&[
                "acme-corp/orders/x.csv",
                "acme/1orders/x.csv",
                "readme.csv",
                "\u{212A}cme/orders/x.csv",
            ]],
        ),
    ];

    #[test]
    fn every_sample_event_parses_to_its_objects() {
        let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            // The load task and the records API's requests are no S3 events.
            .filter(|name| {
                name.ends_with(".json")
                    && name != "sqs-load-task.json"
                    && !name.starts_with("apigw-")
            })
            .collect();
        files.sort();
        let mut covered: Vec<String> = SAMPLES.iter().map(|(f, _)| f.to_string()).collect();
        covered.sort();
        assert_eq!(
            files, covered,
            "every file in events/ has expectations here"
        );
        for (file, want) in SAMPLES {
            let got: Vec<Vec<String>> = deliveries(&sample(file))
                .into_iter()
                .map(|d| {
                    d.objects
                        .unwrap_or_else(|e| panic!("{file}: {e}"))
                        .into_iter()
                        .map(|o| o.key)
                        .collect()
                })
                .collect();
            assert_eq!(got, *want, "{file}");
        }
    }

    #[test]
    fn sample_fields_survive_parsing() {
        let objects = deliveries(&sample("s3-put.json"))
            .remove(0)
            .objects
            .unwrap();
        assert_eq!(
            objects[0].etag.as_deref(),
            Some("ab799430ad592ce76578e654a513f3f7")
        );
        assert_eq!(
            objects[0].version_id.as_deref(),
            Some("cp.Z9slPVeNLeK4VHOlmk5nQqiHcFFOB")
        );
        assert_eq!(objects[0].size, Some(48213));
        let moto = deliveries(&sample("s3-put-moto.json"))
            .remove(0)
            .objects
            .unwrap();
        assert_eq!(
            (moto[0].version_id.as_ref(), moto[0].sequencer.as_ref()),
            (None, None)
        );
        let localstack = deliveries(&sample("s3-put-localstack.json"))
            .remove(0)
            .objects
            .unwrap();
        assert_eq!(
            localstack[0],
            ObjectCreated {
                bucket: "bronze-landing".into(),
                key: "acme/orders/2026 11/a+b.csv".into(),
                size: Some(215),
                etag: Some("192ffcfa69f9d5a61ac1f6405264cbc5".into()),
                version_id: Some("AaIrwNyD9VMjVLSZ3W0H9qipDAXgt7AO".into()),
                sequencer: Some("0055AED6DCD90281E5".into()),
                principal: Some("AIDAJDPLRKLG7UEXAMPLE".into()),
            }
        );
        let eb = deliveries(&sample("eventbridge-object-created.json"))
            .remove(0)
            .objects
            .unwrap();
        assert_eq!(
            eb[0].version_id.as_deref(),
            Some("c7XAwjL893OsPxUC.eGeBOzPLyFN93EZ")
        );
        let sqs = deliveries(&sample("sqs-s3.json"));
        assert_eq!(
            sqs[1].message_id.as_deref(),
            Some("c26b5a8c-fba5-4f9b-8eaa-8ae622d9326b")
        );
    }

    #[test]
    fn the_load_task_sample_is_a_batch_of_tasks() {
        let batch: aws_lambda_events::sqs::SqsEvent =
            serde_json::from_value(sample("sqs-load-task.json")).unwrap();
        let tasks: Vec<crate::task::LoadTask> = batch
            .records
            .iter()
            .map(|m| serde_json::from_str(m.body.as_deref().unwrap()).unwrap())
            .collect();
        assert_eq!(tasks[0].key, "acme/orders/2026 11/a+b.csv");
        assert_eq!(tasks[1].version_id, None);
    }

    #[test]
    fn keys_are_form_decoded() {
        assert_eq!(
            decode_key("acme/orders/2026+11/a%2Bb.csv").unwrap(),
            "acme/orders/2026 11/a+b.csv"
        );
        assert_eq!(
            decode_key("acme%2Forders%2Fx%20y.csv").unwrap(),
            "acme/orders/x y.csv"
        );
        assert!(decode_key("acme/%FF.csv").is_err());
    }

    /// The three encodings one key arrives in: real S3 (form encoding, `/` kept), moto
    /// (`quote_plus`, `/` as `%2F`) and LocalStack (`quote`: `%20` for a space, `%2B`
    /// for `+`, `/` kept, non-ASCII as UTF-8 `%XX`). Each one decodes to the same key.
    #[test]
    fn s3_moto_and_localstack_encodings_decode_alike() {
        let key = "tenant=acme/dataset=x/a b+c (1)~\u{e9}.csv";
        for raw in [
            "tenant%3Dacme/dataset%3Dx/a+b%2Bc+%281%29~%C3%A9.csv",
            // Python's quote_plus, as moto 5.2 calls it.
            "tenant%3Dacme%2Fdataset%3Dx%2Fa+b%2Bc+%281%29~%C3%A9.csv",
            // Captured from LocalStack 4.13.1 for this key.
            "tenant%3Dacme/dataset%3Dx/a%20b%2Bc%20%281%29~%C3%A9.csv",
        ] {
            assert_eq!(decode_key(raw).unwrap(), key, "{raw}");
        }
    }

    #[test]
    fn test_events_and_folder_markers_carry_nothing() {
        let test_event = serde_json::json!({"Service": "Amazon S3", "Event": "s3:TestEvent"});
        assert_eq!(notification(&test_event).unwrap(), vec![]);
        let marker = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "acme/orders/"}}}]});
        assert_eq!(notification(&marker).unwrap(), vec![]);
    }

    #[test]
    fn an_unreadable_sqs_body_fails_alone() {
        let event = serde_json::json!({"Records": [
            {"eventSource": "aws:sqs", "messageId": "1", "body": "not json"},
            {"eventSource": "aws:sqs", "messageId": "2", "body": "{\"Event\":\"s3:TestEvent\"}"}]});
        let d = deliveries(&event);
        assert!(matches!(d[0].objects, Err(EventError::NotJson(_))));
        assert_eq!(d[1].objects, Ok(vec![]));
        assert_eq!(d[1].message_id.as_deref(), Some("2"));
    }
}
