//! A small reader over raw JSON that remembers where each value came from.
//!
//! Why not `#[derive(Deserialize)]` structs: serde's errors do not name the field's path
//! (`missing field `total` at line 9 column 3`), and a JSON number read through serde_json
//! without `arbitrary_precision` becomes an `f64` (Shopify's tax `rate: 0.15`). Here every value
//! stays a slice of the original text ([`RawValue`]), so numbers keep their exact digits and every
//! error says `data.order.lines[2].quantity: ...`. Unknown fields are ignored: channels add fields
//! over time, and reading only what we post keeps old adapters working.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::rc::Rc;

use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::AdapterError;
use crate::posting::money::{Money, Rate};

// Paths are only needed for error messages, so a value does not carry its own: it keeps its
// parent's path (shared) and its own key or index, and its path is written out the first time
// it is asked for. Keys are borrowed from the body unless they contain escapes. Reading an order
// used to allocate a path and a key for every field; in the drain profile that, with the
// re-parses, was a fifth of the worker's CPU (docs/benchmarks.md).

/// Where a value sits in its parent.
#[derive(Clone, Debug)]
enum Step<'a> {
    Root,
    Key(Cow<'a, str>),
    Index(usize),
}

/// One JSON value and the path it was read from.
#[derive(Clone, Debug)]
pub(super) struct Node<'a> {
    raw: &'a RawValue,
    parent: Rc<str>,
    step: Step<'a>,
    path: OnceCell<String>,
}

/// An object's fields, in the body's order, with the object's path.
#[derive(Debug)]
pub(super) struct Obj<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    path: Rc<str>,
}

/// An object's fields as serde reads them, keys borrowed where the body allows.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Deserialize<'a> for Fields<'a> {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'a> Visitor<'a> for V {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<Fields<'a>, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(key)) = map.next_key()? {
                    fields.push((key, map.next_value()?));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// An object key: borrowed from the body, or unescaped into a new string.
struct Key<'a>(Cow<'a, str>);

impl<'a> Deserialize<'a> for Key<'a> {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'a> Visitor<'a> for V {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'a str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Parses the whole body; the only place a syntax error can come from.
pub(super) fn root(body: &[u8]) -> Result<Obj<'_>, AdapterError> {
    let raw: &RawValue = serde_json::from_slice(body).map_err(AdapterError::Json)?;
    Node {
        raw,
        parent: Rc::from(""),
        step: Step::Root,
        path: OnceCell::new(),
    }
    .object()
}

fn wrong(path: &str, expected: &'static str) -> AdapterError {
    AdapterError::WrongType {
        path: display(path),
        expected,
    }
}

/// The root object has the empty path; operators read it as "(body)".
fn display(path: &str) -> String {
    if path.is_empty() {
        "(body)".to_owned()
    } else {
        path.to_owned()
    }
}

/// Builds an [`AdapterError::Invalid`] for `path`.
pub(super) fn invalid(path: &str, reason: impl Into<String>) -> AdapterError {
    AdapterError::Invalid {
        path: display(path),
        reason: reason.into(),
    }
}

impl<'a> Node<'a> {
    /// The path of this value in the body, e.g. `line_items[0].price`.
    pub(super) fn path(&self) -> &str {
        self.path.get_or_init(|| match &self.step {
            Step::Root => String::new(),
            Step::Key(key) => child(&self.parent, key),
            Step::Index(i) => format!("{}[{i}]", self.parent),
        })
    }

    fn text(&self) -> &'a str {
        self.raw.get()
    }

    fn first(&self) -> u8 {
        self.text().bytes().next().unwrap_or(b' ')
    }

    /// The value as an object.
    pub(super) fn object(&self) -> Result<Obj<'a>, AdapterError> {
        if self.first() != b'{' {
            return Err(wrong(self.path(), "an object"));
        }
        let Fields(fields) =
            serde_json::from_str(self.text()).map_err(|_| wrong(self.path(), "an object"))?;
        Ok(Obj {
            fields,
            path: Rc::from(self.path()),
        })
    }

    /// The value's elements, each with its index in the path.
    pub(super) fn array(&self) -> Result<Vec<Node<'a>>, AdapterError> {
        if self.first() != b'[' {
            return Err(wrong(self.path(), "an array"));
        }
        let items: Vec<&'a RawValue> =
            serde_json::from_str(self.text()).map_err(|_| wrong(self.path(), "an array"))?;
        let parent: Rc<str> = Rc::from(self.path());
        Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, raw)| Node {
                raw,
                parent: Rc::clone(&parent),
                step: Step::Index(i),
                path: OnceCell::new(),
            })
            .collect())
    }

    /// The value as a string.
    pub(super) fn string(&self) -> Result<String, AdapterError> {
        if self.first() != b'"' {
            return Err(wrong(self.path(), "a string"));
        }
        serde_json::from_str(self.text()).map_err(|_| wrong(self.path(), "a string"))
    }

    /// A string that is not empty after trimming.
    pub(super) fn text_nonempty(&self) -> Result<String, AdapterError> {
        let s = self.string()?;
        if s.trim().is_empty() {
            return Err(invalid(self.path(), "must not be empty"));
        }
        Ok(s)
    }

    /// The exact text of a JSON number.
    pub(super) fn number_text(&self) -> Result<&'a str, AdapterError> {
        match self.first() {
            b'-' | b'0'..=b'9' => Ok(self.text()),
            _ => Err(wrong(self.path(), "a number")),
        }
    }

    /// A whole number that fits an `i64` ("2", not "2.0" or "2e0").
    pub(super) fn integer(&self) -> Result<i64, AdapterError> {
        let text = self
            .number_text()
            .map_err(|_| wrong(self.path(), "a whole number"))?;
        text.parse()
            .map_err(|_| wrong(self.path(), "a whole number"))
    }

    /// A quantity: a whole number of at least 1.
    pub(super) fn quantity(&self) -> Result<i64, AdapterError> {
        let q = self.integer()?;
        if q < 1 {
            return Err(invalid(self.path(), format!("must be at least 1, got {q}")));
        }
        Ok(q)
    }

    /// An id: a non-empty string, or a whole number kept as its exact digits.
    pub(super) fn id(&self) -> Result<String, AdapterError> {
        if self.first() == b'"' {
            return self.text_nonempty();
        }
        let expected = "a string or a whole-number id";
        let text = self
            .number_text()
            .map_err(|_| wrong(self.path(), expected))?;
        if text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(text.to_owned())
        } else {
            Err(wrong(self.path(), expected))
        }
    }

    /// A boolean.
    pub(super) fn boolean(&self) -> Result<bool, AdapterError> {
        match self.text() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(wrong(self.path(), "true or false")),
        }
    }

    /// An amount written as a decimal string ("249.00"), the native format's rule.
    pub(super) fn money_string(&self) -> Result<Money, AdapterError> {
        if self.first() != b'"' {
            return Err(wrong(self.path(), "a decimal string such as \"249.00\""));
        }
        self.parse_money(&self.string()?)
    }

    /// An amount written as a decimal string or a JSON number, read from its exact text.
    pub(super) fn money_text(&self) -> Result<Money, AdapterError> {
        match self.first() {
            b'"' => self.parse_money(&self.string()?),
            _ => self.parse_money(self.number_text()?),
        }
    }

    fn parse_money(&self, text: &str) -> Result<Money, AdapterError> {
        Money::parse(text.trim()).map_err(|source| AdapterError::Amount {
            path: display(self.path()),
            source,
        })
    }

    /// An amount of at least zero, written as the native format's decimal string.
    pub(super) fn price_string(&self) -> Result<Money, AdapterError> {
        self.at_least_zero(self.money_string()?)
    }

    /// An amount of at least zero, written as a decimal string or a JSON number.
    pub(super) fn price_text(&self) -> Result<Money, AdapterError> {
        self.at_least_zero(self.money_text()?)
    }

    fn at_least_zero(&self, m: Money) -> Result<Money, AdapterError> {
        if m < Money::ZERO {
            return Err(invalid(
                self.path(),
                format!("must not be negative, got {m}"),
            ));
        }
        Ok(m)
    }

    /// An ISO 4217 currency code: three ASCII letters, returned in capitals ("nok" → "NOK").
    pub(super) fn currency(&self) -> Result<String, AdapterError> {
        let code = self.string()?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(invalid(
                self.path(),
                format!("`{code}` is not an ISO 4217 currency code"),
            ));
        }
        Ok(code.to_ascii_uppercase())
    }

    /// A fraction ("0.25" or 0.25) as Shopify writes tax rates, at most 1 (100 %).
    pub(super) fn rate_fraction(&self) -> Result<Rate, AdapterError> {
        let text = match self.first() {
            b'"' => self.string()?,
            _ => self.number_text()?.to_owned(),
        };
        let rate = Rate::parse_fraction(text.trim()).map_err(|source| AdapterError::Amount {
            path: display(self.path()),
            source,
        })?;
        if rate > Rate(10_000) {
            return Err(invalid(
                self.path(),
                format!("rate {text} is above 1 (expected a fraction such as 0.25)"),
            ));
        }
        Ok(rate)
    }

    /// A percentage written as a string ("25", "12.5"), the native format's rule.
    pub(super) fn rate_percent(&self) -> Result<Rate, AdapterError> {
        if self.first() != b'"' {
            return Err(wrong(self.path(), "a percentage string such as \"25\""));
        }
        self.parse_percent(&self.string()?)
    }

    /// A percentage written as a string or a JSON number (25, "7.5"), read from its exact text.
    pub(super) fn percent_text(&self) -> Result<Rate, AdapterError> {
        match self.first() {
            b'"' => self.parse_percent(&self.string()?),
            _ => self.parse_percent(self.number_text()?),
        }
    }

    fn parse_percent(&self, text: &str) -> Result<Rate, AdapterError> {
        Rate::parse_percent(text.trim()).map_err(|source| AdapterError::Amount {
            path: display(self.path()),
            source,
        })
    }

    /// An RFC 3339 timestamp with an offset ("2026-03-02T10:15:00Z", "2008-01-10T11:00:00-05:00").
    pub(super) fn timestamp(&self) -> Result<DateTime<Utc>, AdapterError> {
        let expected = "an RFC 3339 timestamp such as \"2026-03-02T10:15:00Z\"";
        let s = self.string().map_err(|_| wrong(self.path(), expected))?;
        DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| wrong(self.path(), expected))
    }
}

impl<'a> Obj<'a> {
    /// The field `key`; `None` when absent or `null` (the channels use both for "none").
    pub(super) fn get(&self, key: &str) -> Option<Node<'a>> {
        // The last of duplicate keys wins, as it does for serde's maps.
        let (name, raw) = self.fields.iter().rev().find(|(name, _)| name == key)?;
        if raw.get() == "null" {
            return None;
        }
        Some(Node {
            raw,
            parent: Rc::clone(&self.path),
            step: Step::Key(name.clone()),
            path: OnceCell::new(),
        })
    }

    /// The field `key`, which must be present and not `null`.
    pub(super) fn req(&self, key: &str) -> Result<Node<'a>, AdapterError> {
        self.get(key).ok_or_else(|| AdapterError::Missing {
            path: self.child(key),
        })
    }

    /// The field `key` read by `read`, or `None` when absent or `null`.
    pub(super) fn opt<T>(
        &self,
        key: &str,
        read: impl FnOnce(&Node<'a>) -> Result<T, AdapterError>,
    ) -> Result<Option<T>, AdapterError> {
        self.get(key).map(|n| read(&n)).transpose()
    }

    /// The field `key` read by `read`; it must be present.
    pub(super) fn req_as<T>(
        &self,
        key: &str,
        read: impl FnOnce(&Node<'a>) -> Result<T, AdapterError>,
    ) -> Result<T, AdapterError> {
        read(&self.req(key)?)
    }

    /// An optional string; an empty or blank one counts as absent (shops send `"sku": ""`).
    pub(super) fn opt_text(&self, key: &str) -> Result<Option<String>, AdapterError> {
        let s = self.opt(key, Node::string)?;
        Ok(s.filter(|s| !s.trim().is_empty()))
    }

    /// An optional nested object.
    pub(super) fn opt_object(&self, key: &str) -> Result<Option<Obj<'a>>, AdapterError> {
        self.opt(key, Node::object)
    }

    /// A required nested object.
    pub(super) fn req_object(&self, key: &str) -> Result<Obj<'a>, AdapterError> {
        self.req_as(key, Node::object)
    }

    /// The elements of the array `key`; none when it is absent or `null`.
    pub(super) fn list(&self, key: &str) -> Result<Vec<Node<'a>>, AdapterError> {
        Ok(self.opt(key, Node::array)?.unwrap_or_default())
    }

    /// The path `key` would have, for messages about fields that are absent.
    pub(super) fn child(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// This object's own path.
    pub(super) fn path(&self) -> &str {
        &self.path
    }
}

/// The path of the field `key` of the object at `path`.
fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text_and_nulls_count_as_absent() {
        let body = br#"{"id": 9007199254740993, "rate": 0.15, "sku": null, "q": 2.0,
                        "a\u0062c": {"list": [1, "x"]}}"#;
        let o = root(body).unwrap();
        assert_eq!(o.req_as("id", Node::id).unwrap(), "9007199254740993");
        assert_eq!(o.req_as("rate", Node::rate_fraction).unwrap(), Rate(1500));
        assert!(o.get("sku").is_none());
        assert_eq!(o.req("sku").unwrap_err().to_string(), "sku: missing");
        let q = o.req_as("q", Node::quantity).unwrap_err();
        assert_eq!(q.to_string(), "q: must be a whole number");
        let list = o.req_object("abc").unwrap().list("list").unwrap();
        assert_eq!(list[1].path(), "abc.list[1]");
        assert_eq!(
            list[0].string().unwrap_err().to_string(),
            "abc.list[0]: must be a string"
        );
    }
}
