//! rustls settings shared by the probes that speak TLS (HTTP, TLS,
//! Prometheus): one crypto provider (ring) for the whole process, the webpki
//! roots plus an optional CA file, and the two verifiers golive needs beyond
//! the standard one — one that records a verification failure instead of
//! aborting (so an invalid certificate can still be inspected) and one that
//! accepts any certificate (`tls_verify: false`).

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The crypto provider of every TLS connection golive makes.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The webpki roots, plus the certificates of a PEM file when given.
pub fn roots(ca: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read CA file `{path}`: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot read CA file `{path}`: {e}"))?;
        if certs.is_empty() {
            return Err(format!("CA file `{path}` holds no PEM certificate"));
        }
        for cert in certs {
            store
                .add(cert)
                .map_err(|e| format!("CA file `{path}`: {e}"))?;
        }
    }
    Ok(store)
}

/// A client configuration with the given verifier.
pub fn config(verifier: Arc<dyn ServerCertVerifier>) -> Result<ClientConfig, String> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The configuration of an HTTP client: standard verification against the
/// roots and `ca`, or none at all when `verify` is false.
pub fn http_config(ca: Option<&str>, verify: bool) -> Result<ClientConfig, String> {
    if !verify {
        return config(Arc::new(AcceptAny(provider())));
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
        .build()
        .map_err(|e| format!("TLS setup: {e}"))?;
    config(verifier)
}

/// Verifies like the standard verifier but lets the handshake go on when the
/// chain is invalid, keeping the verdict for the TLS probe's `cert.valid`.
#[derive(Debug)]
pub struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    verdict: Arc<Mutex<Option<Result<(), String>>>>,
}

/// Where a [`Recording`] verifier leaves its verdict: `None` until the
/// server's certificate was seen, then `Ok` or the verification error.
pub type Verdict = Arc<Mutex<Option<Result<(), String>>>>;

impl Recording {
    /// A verifier trusting `roots`, and where it will leave its verdict.
    pub fn new(roots: RootCertStore) -> Result<(Arc<Recording>, Verdict), String> {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let verdict: Verdict = Arc::new(Mutex::new(None));
        Ok((
            Arc::new(Recording {
                inner,
                verdict: Arc::clone(&verdict),
            }),
            verdict,
        ))
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any certificate; handshake signatures are still checked, so the
/// peer holds the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
