//! X.509 helpers: loading the machine's CA bundle (real certificates used as Key Vault
//! certificates), extracting what Key Vault reports about a certificate (subject, SANs, key
//! usage, public key as JWK), and issuing generated leaf certificates with rcgen.

use std::path::Path;

use ::time::OffsetDateTime;
use anyhow::{Context, Result, anyhow};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use sha1::Digest;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::state::PublicJwk;

/// Where Debian's ca-certificates puts the bundle.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Folder with one PEM per CA, used when the bundle file is absent.
pub const SYSTEM_DIR: &str = "/etc/ssl/certs";

/// Extracts the DER of every `CERTIFICATE` block of a PEM text.
pub fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    let mut reader = std::io::BufReader::new(text.as_bytes());
    rustls_pemfile::certs(&mut reader).filter_map(|c| c.ok()).map(|c| c.to_vec()).collect()
}

/// Encodes DER as a PEM block with the given label.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// base64url (no padding) SHA-1 thumbprint of a DER certificate, as Key Vault's `x5t`.
pub fn x5t(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der))
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len().saturating_sub(1));
    b[start..].to_vec()
}

fn jwk_of(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<PublicJwk> {
    match spki.parsed().map_err(|e| anyhow!("public key: {e}"))? {
        PublicKey::RSA(rsa) => {
            Ok(PublicJwk::Rsa { n: strip_zeros(rsa.modulus), e: strip_zeros(rsa.exponent) })
        }
        PublicKey::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            let crv = match curve.as_str() {
                "1.2.840.10045.3.1.7" => "P-256",
                "1.3.132.0.34" => "P-384",
                "1.3.132.0.35" => "P-521",
                "1.3.132.0.10" => "P-256K",
                other => return Err(anyhow!("unsupported curve {other}")),
            };
            let data = point.data();
            if data.first() != Some(&4) || data.len() % 2 != 1 {
                return Err(anyhow!("compressed EC point"));
            }
            let half = (data.len() - 1) / 2;
            Ok(PublicJwk::Ec {
                crv: crv.to_string(),
                x: data[1..=half].to_vec(),
                y: data[half + 1..].to_vec(),
            })
        }
        _ => Err(anyhow!("unsupported public key type")),
    }
}

/// Parses a DER SubjectPublicKeyInfo into a JWK.
pub fn spki_jwk(spki_der: &[u8]) -> Result<PublicJwk> {
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| anyhow!("spki: {e}"))?;
    jwk_of(&spki)
}

/// What Key Vault reports about a certificate, extracted from its DER.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// DER bytes.
    pub der: Vec<u8>,
    /// Subject in Key Vault's order (CN first).
    pub subject: String,
    /// Common name, if any.
    pub common_name: Option<String>,
    /// notBefore (Unix seconds).
    pub not_before: i64,
    /// notAfter (Unix seconds).
    pub not_after: i64,
    /// DNS SANs.
    pub sans: Vec<String>,
    /// EKU OIDs.
    pub ekus: Vec<String>,
    /// Key usage names.
    pub key_usage: Vec<String>,
    /// Public key.
    pub jwk: PublicJwk,
    /// Key size in bits.
    pub key_size: u32,
    /// True when subject == issuer.
    pub self_issued: bool,
}

fn name_string(name: &X509Name<'_>) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter_rdn() {
        for attr in rdn.iter() {
            let oid = attr.attr_type();
            let label = oid2abbrev(oid, oid_registry())
                .map(|s| s.to_string())
                .unwrap_or_else(|_| oid.to_id_string());
            let label = match label.as_str() {
                "emailAddress" => "E".to_string(),
                "stateOrProvinceName" | "ST" => "S".to_string(),
                _ => label,
            };
            let value = attr.as_str().unwrap_or("").to_string();
            parts.push(format!("{label}={value}"));
        }
    }
    parts.reverse();
    parts.join(", ")
}

/// Parses a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo> {
    let (_, cert) = parse_x509_certificate(der).map_err(|e| anyhow!("x509: {e}"))?;
    let jwk = jwk_of(cert.public_key())?;
    let key_size = cert.public_key().parsed().map(|p| p.key_size() as u32).unwrap_or(0);
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for g in &ext.value.general_names {
            if let GeneralName::DNSName(d) = g {
                sans.push((*d).to_string());
            }
        }
    }
    let mut ekus = Vec::new();
    if let Ok(Some(ext)) = cert.extended_key_usage() {
        let e = ext.value;
        let known = [
            (e.server_auth, "1.3.6.1.5.5.7.3.1"),
            (e.client_auth, "1.3.6.1.5.5.7.3.2"),
            (e.code_signing, "1.3.6.1.5.5.7.3.3"),
            (e.email_protection, "1.3.6.1.5.5.7.3.4"),
            (e.time_stamping, "1.3.6.1.5.5.7.3.8"),
            (e.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
        ];
        ekus.extend(known.iter().filter(|(b, _)| *b).map(|(_, o)| o.to_string()));
        ekus.extend(e.other.iter().map(|o| o.to_id_string()));
    }
    let mut key_usage = Vec::new();
    if let Ok(Some(ext)) = cert.key_usage() {
        let k = ext.value;
        let flags = [
            (k.digital_signature(), "digitalSignature"),
            (k.non_repudiation(), "nonRepudiation"),
            (k.key_encipherment(), "keyEncipherment"),
            (k.data_encipherment(), "dataEncipherment"),
            (k.key_agreement(), "keyAgreement"),
            (k.key_cert_sign(), "keyCertSign"),
            (k.crl_sign(), "cRLSign"),
            (k.encipher_only(), "encipherOnly"),
            (k.decipher_only(), "decipherOnly"),
        ];
        key_usage.extend(flags.iter().filter(|(b, _)| *b).map(|(_, n)| n.to_string()));
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(|s| s.to_string());
    Ok(CertInfo {
        der: der.to_vec(),
        subject: name_string(cert.subject()),
        common_name,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sans,
        ekus,
        key_usage,
        jwk,
        key_size,
        self_issued: cert.subject() == cert.issuer(),
    })
}

/// Loads the machine's CA certificates, de-duplicated and sorted by subject then thumbprint.
/// Returns an empty list (the caller warns) when neither the bundle nor the folder exists.
pub fn load_system_cas() -> Vec<CertInfo> {
    let mut ders: Vec<Vec<u8>> = Vec::new();
    if let Ok(text) = std::fs::read_to_string(SYSTEM_BUNDLE) {
        ders = pem_blocks(&text);
    } else if let Ok(dir) = std::fs::read_dir(SYSTEM_DIR) {
        let mut paths: Vec<_> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(text) = std::fs::read_to_string(&p) {
                ders.extend(pem_blocks(&text));
            }
        }
    }
    let mut infos: Vec<CertInfo> = ders.iter().filter_map(|d| cert_info(d).ok()).collect();
    infos.sort_by(|a, b| {
        (a.subject.to_lowercase(), x5t(&a.der)).cmp(&(b.subject.to_lowercase(), x5t(&b.der)))
    });
    infos.dedup_by(|a, b| a.der == b.der);
    infos
}

/// Options for a generated certificate.
pub struct LeafSpec<'a> {
    /// Subject, e.g. `CN=api.contoso.com` (only CN/O/OU/C/L/S are understood).
    pub subject: &'a str,
    /// DNS SANs.
    pub sans: &'a [String],
    /// notBefore (Unix seconds).
    pub not_before: i64,
    /// notAfter (Unix seconds).
    pub not_after: i64,
    /// Self-signed instead of signed by the cloudsim CA.
    pub self_signed: bool,
    /// Serial number bytes.
    pub serial: [u8; 16],
}

fn parse_subject(subject: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for part in subject.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        let ty = match k.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "S" | "ST" => DnType::StateOrProvinceName,
            _ => continue,
        };
        dn.push(ty, v.trim());
    }
    dn
}

fn odt(ts: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(ts).context("timestamp out of range")
}

/// Issues a TLS-server-style leaf certificate for `key`, signed by `ca` (or self-signed).
pub fn generate_leaf(
    spec: &LeafSpec<'_>,
    key: &KeyPair,
    ca: &Issuer<'_, KeyPair>,
) -> Result<Vec<u8>> {
    let mut params = CertificateParams::default();
    params.distinguished_name = parse_subject(spec.subject);
    params.subject_alt_names =
        spec.sans.iter().filter_map(|s| s.as_str().try_into().ok().map(SanType::DnsName)).collect();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = odt(spec.not_before)?;
    params.not_after = odt(spec.not_after)?;
    let mut serial = spec.serial;
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = if spec.self_signed {
        params.self_signed(key)
    } else {
        params.use_authority_key_identifier_extension = true;
        params.signed_by(key, ca)
    }
    .context("issuing leaf certificate")?;
    Ok(cert.der().to_vec())
}

/// Loads (or creates) the RSA-2048 key shared by generated leaf certificates.
pub fn leaf_key(dir: &Path) -> Result<KeyPair> {
    let path = dir.join("leaf-key.pem");
    if path.exists() {
        let pem = std::fs::read_to_string(&path).context("reading leaf-key.pem")?;
        return KeyPair::from_pem(&pem).context("parsing leaf-key.pem");
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).context("generating leaf key")?;
    crate::tls::write_private(&path, &key.serialize_pem())?;
    Ok(key)
}
