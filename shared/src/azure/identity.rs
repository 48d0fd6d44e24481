//! Who the product is in Azure: the claims of the token its credential holds.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::AzureError;

/// The identity decoded from an access token (the signature is Azure's to check, not ours).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenIdentity {
    pub tenant_id: Option<String>,
    pub object_id: Option<String>,
    pub application_id: Option<String>,
    pub identity_type: Option<String>,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
struct Claims {
    tid: Option<String>,
    oid: Option<String>,
    appid: Option<String>,
    azp: Option<String>,
    idtyp: Option<String>,
    aud: Option<serde_json::Value>,
    iss: Option<String>,
    exp: Option<i64>,
}

/// Gets a token for `scope` and decodes its claims.
pub async fn current(
    credential: &Arc<dyn TokenCredential>,
    scope: &str,
) -> Result<TokenIdentity, AzureError> {
    let token = credential
        .get_token(&[scope], None)
        .await
        .map_err(|e| AzureError::Credential(e.to_string()))?;
    decode(token.token.secret())
}

/// Decodes the payload of a JWT without verifying it.
pub fn decode(jwt: &str) -> Result<TokenIdentity, AzureError> {
    let bad = |message: String| AzureError::Decode { surface: "Entra ID", message };
    let payload = jwt.split('.').nth(1).ok_or_else(|| bad("token is not a JWT".to_owned()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| bad(format!("token payload: {e}")))?;
    let claims: Claims =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("token claims: {e}")))?;

    let audience = match claims.aud {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Array(list)) => {
            list.first().and_then(|v| v.as_str()).map(str::to_owned)
        }
        _ => None,
    };
    Ok(TokenIdentity {
        tenant_id: claims.tid,
        object_id: claims.oid,
        application_id: claims.appid.or(claims.azp),
        identity_type: claims.idtyp,
        audience,
        issuer: claims.iss,
        expires_at: claims.exp.and_then(|e| chrono::DateTime::from_timestamp(e, 0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"tid":"t","oid":"o","azp":"a","idtyp":"app","aud":"https://x"}"#);
        let identity = decode(&format!("e30.{payload}.sig")).expect("decodes");
        assert_eq!(identity.tenant_id.as_deref(), Some("t"));
        assert_eq!(identity.application_id.as_deref(), Some("a"));
        assert_eq!(identity.identity_type.as_deref(), Some("app"));
        assert_eq!(identity.audience.as_deref(), Some("https://x"));
        assert!(decode("not-a-token").is_err());
    }
}
