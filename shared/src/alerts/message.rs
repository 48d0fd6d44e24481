//! What a delivery says. One [`Message`] is built from a delivery and its events, then rendered
//! for its channel: email (plain text and HTML, one column so it reads on a phone), Slack
//! (incoming webhook), Teams (workflow webhook with an Adaptive Card), PagerDuty (Events v2) and
//! the generic signed JSON webhook. Only metadata appears: names, vaults, dates. Never a value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::AlertType;

/// Items listed in one message at most; the rest are counted.
pub const MAX_LISTED: usize = 500;

/// One line of a message: an asset near or past expiry, a finished scan, or a failed vault.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// `secret`, `key`, `certificate`, `scan` or `vault`.
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_days: Option<i32>,
    /// What happened, in a few words (a scan's outcome, a vault's error code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A message ready to render.
#[derive(Debug, Clone)]
pub struct Message {
    pub delivery_id: Uuid,
    pub rule_name: String,
    pub alert_type: AlertType,
    pub subject: String,
    pub items: Vec<Item>,
    /// Events beyond [`MAX_LISTED`], counted but not listed.
    pub more: usize,
    /// A test message sent from `POST /alerts/rules/{id}/test`: marked in every rendering.
    pub test: bool,
    pub link: Option<String>,
    pub generated_at: DateTime<Utc>,
}

/// The subject line for `count` events of a rule's type; `within_days` is the widest threshold
/// crossed, which every listed item lies within.
pub fn subject(alert_type: AlertType, count: usize, within_days: Option<i32>) -> String {
    let things = if count == 1 { "item" } else { "items" };
    match alert_type {
        AlertType::SecretExpiring => match within_days {
            Some(days) => format!("{count} Key Vault {things} expire within {days} days"),
            None => format!("{count} Key Vault {things} expire soon"),
        },
        AlertType::SecretExpired => format!("{count} Key Vault {things} have expired"),
        AlertType::ScanCompleted => "Key Vault scan finished".to_owned(),
        AlertType::VaultError => {
            let vaults = if count == 1 { "vault" } else { "vaults" };
            format!("{count} {vaults} could not be scanned")
        }
    }
}

impl Message {
    fn title(&self) -> String {
        if self.test {
            format!("[CertifyClouds TEST] {}", self.subject)
        } else {
            format!("[CertifyClouds] {}", self.subject)
        }
    }

    fn intro(&self) -> String {
        if self.test {
            format!(
                "This is a test message for the alert rule \"{}\". It was sent on request to \
                 check the channel and describes no real finding.",
                self.rule_name
            )
        } else {
            format!("Alert rule \"{}\" found the following.", self.rule_name)
        }
    }

    /// One line per item, for text channels.
    fn line(item: &Item, now: DateTime<Utc>) -> String {
        let mut line = format!("{} {}", item.kind, item.name);
        if let Some(vault) = &item.vault {
            line.push_str(&format!(" in vault {vault}"));
        }
        if let Some(expires) = item.expires_on {
            line.push_str(&format!(" — {}", expiry_phrase(expires, now)));
        }
        if let Some(detail) = &item.detail {
            line.push_str(&format!(" — {detail}"));
        }
        line
    }

    /// The email subject.
    pub fn email_subject(&self) -> String {
        self.title()
    }

    /// The plain-text part of the email.
    pub fn email_text(&self) -> String {
        let mut out = format!("{}\n\n{}\n\n", self.title(), self.intro());
        for item in &self.items {
            out.push_str("- ");
            out.push_str(&Self::line(item, self.generated_at));
            out.push('\n');
        }
        if self.more > 0 {
            out.push_str(&format!("- and {} more\n", self.more));
        }
        if let Some(link) = &self.link {
            out.push_str(&format!("\nOpen CertifyClouds: {link}\n"));
        }
        out.push_str(&format!(
            "\nSent by CertifyClouds at {} (delivery {}).\n",
            self.generated_at.to_rfc3339(),
            self.delivery_id
        ));
        out
    }

    /// The HTML part: one column, system fonts, no images or remote content.
    pub fn email_html(&self) -> String {
        let mut rows = String::new();
        for item in &self.items {
            let when = item
                .expires_on
                .map(|e| escape(&expiry_phrase(e, self.generated_at)))
                .or_else(|| item.detail.as_deref().map(escape))
                .unwrap_or_default();
            let vault = item.vault.as_deref().map(escape).unwrap_or_default();
            rows.push_str(&format!(
                "<tr><td style=\"padding:8px 0;border-bottom:1px solid #e5e7eb\">\
                 <div style=\"font-weight:600;word-break:break-all\">{}</div>\
                 <div style=\"color:#4b5563;font-size:14px\">{} {}</div>\
                 <div style=\"color:#b91c1c;font-size:14px\">{}</div></td></tr>",
                escape(&item.name),
                escape(&item.kind),
                if vault.is_empty() { String::new() } else { format!("in {vault}") },
                when
            ));
        }
        if self.more > 0 {
            rows.push_str(&format!(
                "<tr><td style=\"padding:8px 0\">and {} more</td></tr>",
                self.more
            ));
        }
        let link = self
            .link
            .as_deref()
            .map(|l| {
                format!(
                    "<p><a href=\"{}\" style=\"color:#1d4ed8\">Open CertifyClouds</a></p>",
                    escape(l)
                )
            })
            .unwrap_or_default();
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{title}</title></head>\
             <body style=\"margin:0;padding:16px;font-family:-apple-system,Segoe UI,Roboto,sans-serif;\
             color:#111827;background:#ffffff\">\
             <div style=\"max-width:600px;margin:0 auto\">\
             <h1 style=\"font-size:20px;margin:0 0 12px\">{title}</h1>\
             <p style=\"margin:0 0 12px\">{intro}</p>\
             <table role=\"presentation\" style=\"width:100%;border-collapse:collapse\">{rows}</table>\
             {link}<p style=\"color:#6b7280;font-size:12px\">Sent by CertifyClouds at {at} \
             (delivery {id}).</p></div></body></html>",
            title = escape(&self.title()),
            intro = escape(&self.intro()),
            at = self.generated_at.to_rfc3339(),
            id = self.delivery_id,
        )
    }

    /// A Slack incoming-webhook body: a text fallback and blocks. Names are escaped for
    /// mrkdwn, so a rule called `<!channel>` or `<https://x|renew>` neither pings a channel nor
    /// becomes a link.
    pub fn slack(&self) -> Value {
        // A section holds at most 3,000 characters: list whole lines while they fit, then say
        // how many more there are and where to see them.
        const ROOM: usize = 2_800;
        let mut text = String::new();
        let mut listed = 0;
        for item in &self.items {
            let line = format!("• {}\n", slack_escape(&Self::line(item, self.generated_at)));
            if text.len() + line.len() > ROOM {
                break;
            }
            text.push_str(&line);
            listed += 1;
        }
        let hidden = self.items.len() - listed + self.more;
        if hidden > 0 {
            text.push_str(&format!("and {hidden} more"));
        }
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&self.title(), 150)}}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&self.intro())}}),
        ];
        if !text.is_empty() {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
                "text": text.trim_end()}}));
        }
        if let Some(link) = &self.link {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
                "text": format!("<{}|Open CertifyClouds>", slack_escape(link))}}));
        }
        json!({"text": slack_escape(&self.title()), "blocks": blocks})
    }

    /// A Teams workflow-webhook body carrying an Adaptive Card.
    pub fn teams(&self) -> Value {
        let mut body = vec![
            json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
                "text": self.title()}),
            json!({"type": "TextBlock", "wrap": true, "text": self.intro()}),
        ];
        let facts: Vec<Value> = self
            .items
            .iter()
            .take(50)
            .map(|i| {
                let value = i
                    .expires_on
                    .map(|e| expiry_phrase(e, self.generated_at))
                    .or_else(|| i.detail.clone())
                    .unwrap_or_default();
                let title = match &i.vault {
                    Some(vault) => format!("{} {} ({vault})", i.kind, i.name),
                    None => format!("{} {}", i.kind, i.name),
                };
                json!({"title": title, "value": value})
            })
            .collect();
        if !facts.is_empty() {
            body.push(json!({"type": "FactSet", "facts": facts}));
        }
        let hidden = self.items.len().saturating_sub(50) + self.more;
        if hidden > 0 {
            body.push(
                json!({"type": "TextBlock", "wrap": true, "text": format!("and {hidden} more")}),
            );
        }
        let mut card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
        });
        if let Some(link) = &self.link {
            card["actions"] =
                json!([{"type": "Action.OpenUrl", "title": "Open CertifyClouds", "url": link}]);
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card,
            }],
        })
    }

    /// A PagerDuty Events API v2 trigger. The dedup key is the delivery id, so a retried
    /// delivery updates the same incident instead of opening another.
    pub fn pagerduty(&self, routing_key: &str) -> Value {
        let severity = match self.alert_type {
            AlertType::SecretExpired | AlertType::VaultError => "error",
            AlertType::SecretExpiring => "warning",
            AlertType::ScanCompleted => "info",
        };
        let items: Vec<&Item> = self.items.iter().take(100).collect();
        json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": format!("certifyclouds-{}", self.delivery_id),
            "payload": {
                "summary": truncate(&self.title(), 1024),
                "source": "certifyclouds",
                "severity": if self.test { "info" } else { severity },
                "timestamp": self.generated_at.to_rfc3339(),
                "component": "azure-key-vault",
                "class": self.alert_type.as_str(),
                "custom_details": {"rule": self.rule_name, "test": self.test, "items": items,
                    "more": self.more},
            },
        })
    }

    /// The generic webhook body.
    pub fn webhook(&self) -> Value {
        json!({
            "deliveryId": self.delivery_id,
            "rule": self.rule_name,
            "alertType": self.alert_type.as_str(),
            "test": self.test,
            "subject": self.title(),
            "generatedAt": self.generated_at,
            "items": self.items,
            "more": self.more,
            "link": self.link,
        })
    }
}

/// "expires in 5 days (2026-12-09)" or "expired 3 days ago (2026-12-01)".
pub fn expiry_phrase(expires: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let date = expires.format("%Y-%m-%d");
    let seconds = (expires - now).num_seconds();
    if seconds <= 0 {
        let days = (-seconds) / 86_400;
        match days {
            0 => format!("expired today ({date})"),
            1 => format!("expired 1 day ago ({date})"),
            n => format!("expired {n} days ago ({date})"),
        }
    } else {
        // Whole days left, counted as the API's `daysUntilExpiry` counts them.
        match seconds / 86_400 {
            0 => format!("expires within a day ({date})"),
            1 => format!("expires in 1 day ({date})"),
            n => format!("expires in {n} days ({date})"),
        }
    }
}

/// Slack's control characters in mrkdwn text (mentions, links, `&` entities), escaped as
/// Slack documents.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn message(test: bool) -> Message {
        let now = Utc::now();
        Message {
            delivery_id: Uuid::new_v4(),
            rule_name: "Expiring <prod> secrets".into(),
            alert_type: AlertType::SecretExpiring,
            subject: subject(AlertType::SecretExpiring, 2, Some(14)),
            items: vec![
                Item {
                    kind: "secret".into(),
                    name: "db-password".into(),
                    vault: Some("kv-prod".into()),
                    expires_on: Some(now + Duration::days(5)),
                    threshold_days: Some(14),
                    ..Item::default()
                },
                Item {
                    kind: "certificate".into(),
                    name: "api-tls".into(),
                    vault: Some("kv-edge".into()),
                    expires_on: Some(now + Duration::hours(30)),
                    threshold_days: Some(14),
                    ..Item::default()
                },
            ],
            more: 0,
            test,
            link: Some("https://certifyclouds.example.test/".into()),
            generated_at: now,
        }
    }

    #[test]
    fn every_rendering_lists_the_items_and_escapes_html() {
        let m = message(false);
        let text = m.email_text();
        assert!(text.contains("2 Key Vault items expire within 14 days"));
        assert!(text.contains("secret db-password in vault kv-prod — expires in 5 days"));
        assert!(text.contains("certificate api-tls in vault kv-edge — expires in 1 day"));
        let html = m.email_html();
        assert!(html.contains("Expiring &lt;prod&gt; secrets"));
        assert!(!html.contains("<prod>"));
        assert!(html.contains("width=device-width"));
        assert!(m.slack()["blocks"][2]["text"]["text"].as_str().unwrap().contains("db-password"));
        let card = &m.teams()["attachments"][0];
        assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(card["content"]["body"][2]["facts"].as_array().unwrap().len(), 2);
        let pd = m.pagerduty("routing-key-0123");
        assert_eq!(pd["event_action"], "trigger");
        assert_eq!(pd["payload"]["severity"], "warning");
        assert_eq!(m.webhook()["items"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        let mut m = message(false);
        m.rule_name = "<!channel> <https://evil.example|renew now> & <@U123>".into();
        m.items[0].name = "<!here>".into();
        // The product's own link to itself is the only link a message may carry.
        m.link = None;
        let body = m.slack().to_string();
        for control in ["<!channel>", "<!here>", "<https://", "<@U123>"] {
            assert!(!body.contains(control), "{control} in {body}");
        }
        assert!(body.contains("&lt;!channel&gt; &lt;https://evil.example|renew now&gt; &amp;"));
    }

    #[test]
    fn a_long_slack_list_ends_with_a_count_and_the_link() {
        let mut m = message(false);
        let item = m.items[0].clone();
        m.items =
            (0..200).map(|i| Item { name: format!("secret-{i:03}"), ..item.clone() }).collect();
        let body = m.slack();
        let list = body["blocks"][2]["text"]["text"].as_str().unwrap();
        assert!(list.len() <= 3_000, "{}", list.len());
        let shown = list.lines().filter(|l| l.starts_with('•')).count();
        assert!(list.ends_with(&format!("and {} more", 200 - shown)), "{list}");
        assert!(body["blocks"][3]["text"]["text"].as_str().unwrap().contains("Open CertifyClouds"));
    }

    #[test]
    fn a_test_message_says_so_everywhere() {
        let m = message(true);
        assert!(m.email_subject().starts_with("[CertifyClouds TEST]"));
        assert!(m.email_text().contains("This is a test message"));
        assert!(m.email_html().contains("This is a test message"));
        assert!(m.slack()["text"].as_str().unwrap().contains("TEST"));
        assert_eq!(m.webhook()["test"], true);
        assert_eq!(m.pagerduty("k")["payload"]["severity"], "info");
    }
}
