//! The kinds of sales channel a connection can be, and their names on the wire and in the
//! database.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A sales channel kind. It decides how webhooks are signed (`crate::signature`) and how their
/// payloads are read (`crate::channels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// shopbridge's native event format, signed with Standard Webhooks.
    Nettbutikk,
    /// Shopify, signed with `X-Shopify-Hmac-Sha256`.
    Shopify,
    /// WooCommerce, signed with `X-WC-Webhook-Signature`.
    #[serde(rename = "woocommerce")]
    WooCommerce,
    /// Stripe, signed with `Stripe-Signature`.
    Stripe,
}

impl Channel {
    /// Every channel, in the order operators see them listed.
    pub const ALL: [Channel; 4] = [
        Channel::Nettbutikk,
        Channel::Shopify,
        Channel::WooCommerce,
        Channel::Stripe,
    ];

    /// The name used in the database, the CLI, AMQP headers and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Nettbutikk => "nettbutikk",
            Channel::Shopify => "shopify",
            Channel::WooCommerce => "woocommerce",
            Channel::Stripe => "stripe",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of `nettbutikk`, `shopify`, `woocommerce`, `stripe`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel `{0}` (expected nettbutikk, shopify, woocommerce or stripe)")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
        }
        assert!("magento".parse::<Channel>().is_err());
    }
}
