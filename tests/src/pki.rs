//! A certificate authority made at start, and certificates it issues for
//! the testbed's servers (names and loopback addresses as SANs).

use std::sync::Arc;

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The test CA.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    pem: String,
}

/// A certificate and its key, as PEM and as a rustls server configuration.
pub struct Leaf {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PEM).
    pub key_pem: String,
    /// Ready to serve.
    pub server_config: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A fresh CA.
    pub fn new() -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "mimi testbed CA");
        params.distinguished_name = dn;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            pem: cert.pem(),
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate (PEM), for trust stores.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate (DER).
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// Issues a server certificate for `names` (host names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Result<Leaf> {
        let key = KeyPair::generate()?;
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let server_config = mimi_server_core::tls::server_config_from(
            vec![cert.der().clone(), self.cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            server_config,
        })
    }
}
