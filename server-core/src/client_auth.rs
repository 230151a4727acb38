//! Clients that authenticate with a certificate pinned by its SHA-256
//! fingerprint (a provider's attesters, DESIGN §10): the TLS handshake
//! asks for a certificate but does not require one, so every other client
//! connects as before; a presented certificate must be one of the pinned
//! ones and prove its key. The request handler learns which one through the
//! [`PeerCertificate`] extension, and decides per resource.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The SHA-256 of a peer's leaf certificate, put into each request's
/// extensions when the client presented one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCertificate(pub [u8; 32]);

impl PeerCertificate {
    /// The fingerprint of `der`.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

/// Reads the first certificate of a PEM file: its fingerprint.
pub fn pinned_certificate(path: &Path) -> Result<PeerCertificate> {
    let cert = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Tls(format!("certificate {}: {e}", path.display())))?
        .next()
        .ok_or_else(|| Error::Tls(format!("no certificate in {}", path.display())))?
        .map_err(|e| Error::Tls(format!("certificate {}: {e}", path.display())))?;
    Ok(PeerCertificate::of(&cert))
}

/// Accepts exactly the pinned certificates, and connections without one.
#[derive(Debug)]
pub struct PinnedClientCerts {
    pinned: HashSet<PeerCertificate>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl PinnedClientCerts {
    /// A verifier for these fingerprints.
    pub fn new(pinned: impl IntoIterator<Item = PeerCertificate>) -> Arc<Self> {
        Arc::new(Self {
            pinned: pinned.into_iter().collect(),
            provider: crate::tls::provider(),
        })
    }
}

impl ClientCertVerifier for PinnedClientCerts {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        if self.pinned.contains(&PeerCertificate::of(end_entity)) {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
