//! Alerting: rules say what to watch and whom to tell; evaluation turns the inventory and scan
//! outcomes into events (one per threshold crossing, recorded once under a unique key); events
//! are grouped into deliveries, one message per recipient, sent by jobs with bounded retries.
//!
//! - [`evaluate`]: the set-based SQL that finds crossings and groups them into deliveries.
//! - [`message`]: what a delivery says, per channel (email text and HTML, Slack, Teams,
//!   PagerDuty, signed JSON).
//! - [`send`]: the channels themselves (SMTP through lettre, HTTP through reqwest).

pub mod evaluate;
pub mod message;
pub mod send;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{AlertType, AssetType, DeliveryMethod};

/// The purpose the channel credentials are sealed under (see [`crate::crypto`]).
pub const CHANNEL_SEAL_PURPOSE: &str = "alert-channel";

/// At most this many thresholds per rule, and this many recipients.
pub const MAX_THRESHOLDS: usize = 8;
pub const MAX_RECIPIENTS: usize = 50;

/// Which part of the inventory a rule watches. Empty lists mean "all".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scope {
    /// Subscription ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<String>,
    /// Vault names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vaults: Vec<String>,
    /// Tags every matching asset carries (name and value, compared exactly).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// Where a channel sends, kept sealed in the rule row: the webhook URL (Slack, Teams, generic)
/// or PagerDuty's routing key, and the generic webhook's signing secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// One recipient of an email rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A fixed address.
    Address(String),
    /// The address in the named tag of each asset (`tag:owner`).
    Tag(String),
}

impl Recipient {
    /// Parses `someone@example.com` or `tag:<name>`. An address must also be one lettre will
    /// put in a header, so a rule is refused when it is written rather than failing at every
    /// delivery.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some(tag) = raw.strip_prefix("tag:") {
            if tag.is_empty() || tag.len() > 128 || !is_plain_text(tag) {
                return Err(format!("{raw:?}: a tag recipient names a tag, as in tag:owner"));
            }
            return Ok(Self::Tag(tag.to_owned()));
        }
        if is_address(raw) && raw.parse::<lettre::Address>().is_ok() {
            Ok(Self::Address(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is neither an email address nor tag:<name>"))
        }
    }
}

/// Whether `text` is free of control characters (CR, LF, NUL and the rest) and of the Unicode
/// bidirectional overrides, which could make a name in a message read as something else.
pub fn is_plain_text(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

/// A plain check of an email address: one `@`, something before it, a dotted domain after it,
/// no spaces or angle brackets. lettre checks it fully when the message is built.
pub fn is_address(raw: &str) -> bool {
    let Some((local, domain)) = raw.split_once('@') else { return false };
    !local.is_empty()
        && raw.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && raw.chars().all(|c| !c.is_whitespace() && !matches!(c, '<' | '>' | ',' | ';' | '"'))
}

/// Whether a type watches assets (and so has thresholds and asset types).
pub fn watches_assets(alert_type: AlertType) -> bool {
    matches!(alert_type, AlertType::SecretExpiring | AlertType::SecretExpired)
}

/// Normalises thresholds: positive, at most a year, distinct, largest first.
pub fn normalise_thresholds(raw: &[i64]) -> Result<Vec<i32>, String> {
    if raw.len() > MAX_THRESHOLDS {
        return Err(format!("at most {MAX_THRESHOLDS} thresholds"));
    }
    let mut out = Vec::with_capacity(raw.len());
    for &days in raw {
        if !(1..=365).contains(&days) {
            return Err(format!("{days} is not between 1 and 365 days"));
        }
        out.push(days as i32);
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.dedup();
    Ok(out)
}

/// The tightest threshold an asset `days_left` from expiry has crossed, if any.
pub fn crossed_threshold(thresholds: &[i32], days_left: i64) -> Option<i32> {
    thresholds.iter().copied().filter(|&t| days_left <= i64::from(t)).min()
}

/// What a rule's channel needs besides recipients.
pub fn channel_requirements(method: DeliveryMethod) -> &'static str {
    match method {
        DeliveryMethod::Email => "recipients (email addresses or tag:<name>)",
        DeliveryMethod::Slack => "webhookUrl (a Slack incoming webhook)",
        DeliveryMethod::Teams => "webhookUrl (a Teams workflow webhook)",
        DeliveryMethod::PagerDuty => "routingKey (a PagerDuty Events v2 integration key)",
        DeliveryMethod::Webhook => "webhookUrl and signingSecret",
    }
}

/// The asset types a rule covers: the given list, or every type.
pub fn covered_types(asset_types: Option<&[AssetType]>) -> Vec<AssetType> {
    match asset_types {
        Some(types) if !types.is_empty() => types.to_vec(),
        _ => AssetType::ALL.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_crossed_threshold_is_the_one_alerted() {
        let thresholds = normalise_thresholds(&[7, 30, 14, 1, 14]).unwrap();
        assert_eq!(thresholds, vec![30, 14, 7, 1]);
        assert_eq!(crossed_threshold(&thresholds, 45), None);
        assert_eq!(crossed_threshold(&thresholds, 30), Some(30));
        assert_eq!(crossed_threshold(&thresholds, 20), Some(30));
        assert_eq!(crossed_threshold(&thresholds, 10), Some(14));
        assert_eq!(crossed_threshold(&thresholds, 0), Some(1));
        assert!(normalise_thresholds(&[0]).is_err());
        assert!(normalise_thresholds(&[400]).is_err());
    }

    #[test]
    fn recipients_are_addresses_or_tags() {
        assert_eq!(Recipient::parse("tag:owner").unwrap(), Recipient::Tag("owner".into()));
        assert_eq!(
            Recipient::parse(" team@company.example ").unwrap(),
            Recipient::Address("team@company.example".into())
        );
        for bad in ["", "tag:", "team", "a@b", "a b@c.example", "x@@y.example", "<a@b.example>"] {
            assert!(Recipient::parse(bad).is_err(), "{bad:?}");
        }
        // What lettre would refuse at delivery time is refused here.
        for bad in [
            "a\0b@c.example",
            "a\u{7}b@c.example",
            "a(b)@c.example",
            "a\\b@c.example",
            "a@b..example",
            "a@-b.example",
            "tag:own\r\ner",
            "tag:\0",
        ] {
            assert!(Recipient::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Recipient::parse("ünï@exämple.example").is_ok());
    }

    #[test]
    fn plain_text_has_no_controls_or_bidi_overrides() {
        assert!(is_plain_text("Owners 🔔 – échéances 名前"));
        for bad in ["a\r\nBcc: x", "nul\0", "bell\u{7}", "rtl \u{202e} txt", "iso \u{2066}"] {
            assert!(!is_plain_text(bad), "{bad:?}");
        }
    }
}
