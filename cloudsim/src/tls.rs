//! TLS material: a local root CA persisted in the state directory (`ca.pem`, `ca-key.pem`,
//! reused across restarts so clients keep trusting it), a fresh server certificate for
//! 127.0.0.1 / ::1 / localhost signed by it, and the rustls server configuration.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// The local certificate authority.
pub struct Ca {
    /// Issuer used to sign server and generated leaf certificates.
    pub issuer: Issuer<'static, KeyPair>,
    /// DER of the CA certificate.
    pub der: Vec<u8>,
}

/// Writes a file readable only by its owner (private keys).
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "CertifyClouds cloudsim");
    dn.push(DnType::CommonName, "cloudsim Local Root CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Ca {
    /// Loads the CA from `dir`, or creates and saves a new one.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        if cert_path.exists() && key_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path).context("reading ca-key.pem")?;
            let key = KeyPair::from_pem(&key_pem).context("parsing ca-key.pem")?;
            let cert_pem = std::fs::read_to_string(&cert_path).context("reading ca.pem")?;
            let der = crate::certs::pem_blocks(&cert_pem)
                .into_iter()
                .next()
                .context("ca.pem holds no certificate")?;
            return Ok(Self { issuer: Issuer::new(ca_params(), key), der });
        }
        let key = KeyPair::generate().context("generating CA key")?;
        let mut params = ca_params();
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        let cert = params.self_signed(&key).context("self-signing CA")?;
        std::fs::write(&cert_path, cert.pem()).context("writing ca.pem")?;
        write_private(&key_path, &key.serialize_pem())?;
        Ok(Self { der: cert.der().to_vec(), issuer: Issuer::new(params, key) })
    }

    /// Issues a server certificate for loopback names, returning (cert DER, key PKCS#8 DER).
    pub fn server_cert(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let key = KeyPair::generate().context("generating server key")?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "cloudsim");
        params.distinguished_name = dn;
        params.subject_alt_names = vec![
            SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
            SanType::IpAddress(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().context("dns name")?),
        ];
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(365);
        let cert = params.signed_by(&key, &self.issuer).context("signing server cert")?;
        Ok((cert.der().to_vec(), key.serialize_der()))
    }

    /// Builds the rustls server configuration (HTTP/1.1 via ALPN) with a fresh server cert.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let (cert, key) = self.server_cert()?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("tls versions")?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.into(), self.der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
            )
            .context("tls server config")?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}
