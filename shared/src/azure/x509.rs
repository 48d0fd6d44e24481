//! Reads the metadata of an X.509 certificate from its DER bytes: subject, issuer, SANs, key
//! type and size, SHA-1 thumbprint, serial and validity.

use chrono::{DateTime, Utc};
use sha1::{Digest, Sha1};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// What the inventory keeps of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub key_type: Option<String>,
    pub key_size: Option<i32>,
    pub key_curve: Option<String>,
    /// Upper-case hex SHA-1 of the DER bytes, as the Azure portal shows it.
    pub thumbprint: String,
    pub serial_number: String,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
}

/// Parses a DER certificate.
pub fn parse(der: &[u8]) -> Result<CertificateInfo, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;

    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::RFC822Name(m) => sans.push(format!("email:{m}")),
                GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                GeneralName::IPAddress(bytes) => sans.push(format!("IP:{}", format_ip(bytes))),
                _ => {}
            }
        }
    }

    let (key_type, key_size, key_curve) = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => (Some("RSA"), Some(rsa.key_size() as i32), None),
        Ok(PublicKey::EC(point)) => {
            let curve = cert
                .public_key()
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| curve_name(&oid.to_id_string()));
            (Some("EC"), Some(point.key_size() as i32), curve)
        }
        Ok(PublicKey::DSA(_)) => (Some("DSA"), None, None),
        Ok(_) | Err(_) => (None, None, None),
    };

    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        key_type: key_type.map(str::to_owned),
        key_size,
        key_curve,
        thumbprint: hex::encode_upper(Sha1::digest(der)),
        serial_number: cert.raw_serial_as_string().replace(':', "").to_ascii_uppercase(),
        not_before: DateTime::from_timestamp(cert.validity().not_before.timestamp(), 0),
        not_after: DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0),
    })
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256".to_owned(),
        "1.3.132.0.34" => "P-384".to_owned(),
        "1.3.132.0.35" => "P-521".to_owned(),
        "1.3.132.0.10" => "P-256K".to_owned(),
        other => other.to_owned(),
    }
}

fn format_ip(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => hex::encode(bytes),
    }
}
