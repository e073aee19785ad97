//! The opaque `next` cursor of keyset pagination: where the previous page ended (its
//! last sort value and record key) and what it was asked, so the next page is one
//! index range scan from there, never an OFFSET, and a cursor cannot be replayed
//! against another order or instant.

use serde::{Deserialize, Serialize};

use super::problem::Problem;

/// Where a page ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The `order` parameter the pages are in (`None`: by record key).
    #[serde(rename = "o")]
    pub order: Option<String>,
    /// The `as_of` instant the pages are read at.
    #[serde(rename = "a")]
    pub as_of: Option<String>,
    /// The last row's sort value as text (`None` when it was null or there is no
    /// order field).
    #[serde(rename = "v")]
    pub value: Option<String>,
    /// The last row's record key.
    #[serde(rename = "k")]
    pub key: String,
}

impl Cursor {
    /// The cursor as a URL-safe token (hex: opaque, and no escaping in a query).
    pub fn encode(&self) -> String {
        hex::encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a token made by [`Cursor::encode`] for a request with this `order` and
    /// `as_of`.
    pub fn decode(token: &str, order: Option<&str>, as_of: Option<&str>) -> Result<Self, Problem> {
        let bad = || Problem::bad_request("cursor", "the cursor is not one this API gave out");
        let bytes = hex::decode(token).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.order.as_deref() != order || cursor.as_of.as_deref() != as_of {
            return Err(Problem::bad_request(
                "cursor",
                "the cursor belongs to pages of another order or as_of: repeat those parameters as they were",
            ));
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_mismatch() {
        let c = Cursor {
            order: Some("day.desc".into()),
            as_of: None,
            value: Some("2026-01-01".into()),
            key: "[\"7\"]".into(),
        };
        let token = c.encode();
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Cursor::decode(&token, Some("day.desc"), None).unwrap(), c);
        assert!(Cursor::decode(&token, None, None).is_err());
        assert!(Cursor::decode("zz", Some("day.desc"), None).is_err());
    }
}
