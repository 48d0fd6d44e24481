//! Access-token signing and validation: an RSA-2048 key persisted in the state directory signs
//! RS256 JWTs shaped like Entra ID v2.0 app tokens; the same key validates them on the ARM and
//! Key Vault endpoints.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::{KeyPair, PKCS_RSA_SHA256, PublicKeyData};
use serde::{Deserialize, Serialize};
use sha1::Digest;

/// Lifetime of issued tokens in seconds (Entra reports 3599 for a fresh one-hour token).
pub const TOKEN_LIFETIME: i64 = 3600;

/// Claims carried by issued access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Audience (resource).
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Client id of the authorized party.
    #[serde(default)]
    pub azp: String,
    /// Application id.
    #[serde(default)]
    pub appid: String,
    /// Identity type: app.
    #[serde(default)]
    pub idtyp: String,
    /// Object id of the service principal.
    #[serde(default)]
    pub oid: String,
    /// App roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Subject (= oid for app tokens).
    #[serde(default)]
    pub sub: String,
    /// Tenant id.
    #[serde(default)]
    pub tid: String,
    /// Unique token id.
    #[serde(default)]
    pub uti: String,
    /// Token version.
    #[serde(default)]
    pub ver: String,
    /// Resource id of a managed identity (managed-identity tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_mirid: Option<String>,
}

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, or not RS256, or its signature does not verify with cloudsim's key.
    BadSignature,
    /// `exp` is in the past.
    Expired {
        /// The token's expiry.
        exp: i64,
    },
    /// `nbf` is in the future.
    NotYetValid,
    /// `aud` is not accepted by this service.
    Audience {
        /// The token's audience.
        found: String,
    },
    /// `iss` or `tid` is not this tenant.
    Issuer {
        /// The token's issuer.
        found: String,
    },
}

/// The signing key plus its public JWK parameters.
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Key id placed in token headers and the JWKS.
    pub kid: String,
    /// Base64url modulus.
    pub n: String,
    /// Base64url exponent.
    pub e: String,
}

impl Signer {
    /// Loads `token-key.pem` from `dir`, generating (and saving) a new RSA-2048 key if absent.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let path = dir.join("token-key.pem");
        let key = if path.exists() {
            let pem = std::fs::read_to_string(&path).context("reading token-key.pem")?;
            KeyPair::from_pem(&pem).context("parsing token-key.pem")?
        } else {
            let key = KeyPair::generate_for(&PKCS_RSA_SHA256).context("generating RSA key")?;
            crate::tls::write_private(&path, &key.serialize_pem())?;
            key
        };
        let pem = key.serialize_pem();
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).context("loading signing key")?;
        let (n, e) = match crate::certs::spki_jwk(&key.subject_public_key_info())? {
            crate::state::PublicJwk::Rsa { n, e } => (n, e),
            crate::state::PublicJwk::Ec { .. } => anyhow::bail!("token key is not RSA"),
        };
        let kid = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&n));
        let n = URL_SAFE_NO_PAD.encode(&n);
        let e = URL_SAFE_NO_PAD.encode(&e);
        let decoding = DecodingKey::from_rsa_components(&n, &e).context("decoding key")?;
        Ok(Self { encoding, decoding, kid, n, e })
    }

    /// Signs claims into a compact JWT with `typ` and `kid` headers.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).context("signing token")
    }

    /// Verifies signature, lifetime, issuer/tenant and audience (case-insensitive match against
    /// `audiences`).
    pub fn validate(
        &self,
        token: &str,
        audiences: &[&str],
        issuer: &str,
        tenant: &str,
        now: i64,
    ) -> Result<Claims, TokenError> {
        self.validate_with(token, audiences, &|c: &Claims| c.iss == issuer && c.tid == tenant, now)
    }

    /// Like [`Signer::validate`], with the issuer check left to `issuer_ok` (services that
    /// accept tokens of several tenants, such as Graph and Azure DevOps).
    pub fn validate_with(
        &self,
        token: &str,
        audiences: &[&str],
        issuer_ok: &dyn Fn(&Claims) -> bool,
        now: i64,
    ) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map_err(|_| TokenError::BadSignature)?;
        let c = data.claims;
        if c.exp <= now {
            return Err(TokenError::Expired { exp: c.exp });
        }
        if c.nbf > now + 300 {
            return Err(TokenError::NotYetValid);
        }
        if !issuer_ok(&c) {
            return Err(TokenError::Issuer { found: c.iss });
        }
        if !audiences.iter().any(|a| a.eq_ignore_ascii_case(&c.aud)) {
            return Err(TokenError::Audience { found: c.aud });
        }
        Ok(c)
    }

    /// The JWKS document served at `/{tenant}/discovery/v2.0/keys`.
    pub fn jwks(&self, issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "RSA",
                "use": "sig",
                "kid": self.kid,
                "x5t": self.kid,
                "n": self.n,
                "e": self.e,
                "alg": "RS256",
                "issuer": issuer,
            }]
        })
    }
}
