//! The landing bucket's policy, made from the same rules dispatch applies
//! ([`Admission`]): the bucket is the first door and dispatch the second, and two
//! hand-written copies of who may write where would drift apart.

use serde_json::{json, Value};

use crate::admission::Admission;

/// The whole policy for `bucket`: the template's own statements (TLS only, no SSE-KMS
/// or SSE-C uploads), then, per tenant with writers, a denial of `PutObject` into the
/// tenant's prefixes (`t/…` and `tenant=t/…`) to anyone else, and, with an allow-list,
/// a denial of `PutObject` anywhere but the listed tenants' prefixes.
pub fn bucket_policy(admission: &Admission, bucket: &str) -> Value {
    let arn = format!("arn:aws:s3:::{bucket}");
    let objects = format!("{arn}/*");
    let mut statements = vec![
        json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
               "Action": "s3:*", "Resource": [arn, objects],
               "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
        json!({"Sid": "DenySseKmsUploads", "Effect": "Deny", "Principal": "*",
               "Action": "s3:PutObject", "Resource": objects,
               "Condition": {"StringNotEqualsIfExists":
                   {"s3:x-amz-server-side-encryption": "AES256"}}}),
        json!({"Sid": "DenySseCUploads", "Effect": "Deny", "Principal": "*",
               "Action": "s3:PutObject", "Resource": objects,
               "Condition": {"Null":
                   {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}}),
    ];
    for (n, (tenant, writers)) in admission.writers.iter().enumerate() {
        statements.push(json!({
            // By position: a `Sid` is letters and digits only, and must be unique.
            "Sid": format!("OnlyWriters{}", n + 1),
            "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
            "Resource": prefixes(bucket, tenant),
            "Condition": {"StringNotLike": {"aws:userid": user_ids(writers)}},
        }));
    }
    if let Some(tenants) = &admission.tenants {
        let allowed: Vec<String> = tenants.iter().flat_map(|t| prefixes(bucket, t)).collect();
        statements.push(json!({
            "Sid": "OnlyListedTenants", "Effect": "Deny", "Principal": "*",
            "Action": "s3:PutObject", "NotResource": allowed,
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Both spellings of a tenant's prefix that dispatch reads (`keys.rs`).
fn prefixes(bucket: &str, tenant: &str) -> [String; 2] {
    [
        format!("arn:aws:s3:::{bucket}/{tenant}/*"),
        format!("arn:aws:s3:::{bucket}/tenant={tenant}/*"),
    ]
}

/// `aws:userid` values of the writers, as dispatch matches them: an IAM user's id
/// (`AIDA…`) alone, a role's (`AROA…`) with any session after `:`. S3's events put
/// `AWS:` before the id; the policy's key has no such prefix.
fn user_ids<'a>(writers: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    writers
        .into_iter()
        .flat_map(|w| {
            let w = w.strip_prefix("AWS:").unwrap_or(w);
            let id = w.split(':').next().unwrap_or(w);
            [id.to_owned(), format!("{id}:*")]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> Admission {
        Admission {
            tenants: Some(["acme".to_owned(), "big_co".to_owned()].into()),
            writers: [(
                "acme".to_owned(),
                ["AWS:AIDAACME".to_owned(), "AROAROLE".to_owned()].into(),
            )]
            .into(),
            ..Admission::default()
        }
    }

    #[test]
    fn each_tenants_prefixes_are_denied_to_all_but_its_writers() {
        let policy = bucket_policy(&admission(), "landing");
        let acme = &policy["Statement"][3];
        assert_eq!(acme["Sid"], "OnlyWriters1");
        assert_eq!(acme["Effect"], "Deny");
        assert_eq!(
            acme["Resource"],
            json!([
                "arn:aws:s3:::landing/acme/*",
                "arn:aws:s3:::landing/tenant=acme/*"
            ])
        );
        assert_eq!(
            acme["Condition"]["StringNotLike"]["aws:userid"],
            json!(["AROAROLE", "AROAROLE:*", "AIDAACME", "AIDAACME:*"])
        );
    }

    #[test]
    fn an_allow_list_denies_every_other_prefix() {
        let policy = bucket_policy(&admission(), "landing");
        let listed = &policy["Statement"][4];
        assert_eq!(listed["Sid"], "OnlyListedTenants");
        assert_eq!(
            listed["NotResource"],
            json!([
                "arn:aws:s3:::landing/acme/*",
                "arn:aws:s3:::landing/tenant=acme/*",
                "arn:aws:s3:::landing/big_co/*",
                "arn:aws:s3:::landing/tenant=big_co/*"
            ])
        );
        assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(5));
    }

    #[test]
    fn without_rules_only_the_templates_statements_remain() {
        let policy = bucket_policy(&Admission::default(), "landing");
        let sids: Vec<&str> = policy["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["Sid"].as_str())
            .collect();
        assert_eq!(
            sids,
            [
                "DenyInsecureTransport",
                "DenySseKmsUploads",
                "DenySseCUploads"
            ]
        );
    }
}
