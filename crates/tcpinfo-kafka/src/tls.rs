//! TLS to the brokers: a rustls client configuration (ring provider, TLS 1.2 and 1.3)
//! from PEM files: the certificate authorities (default: the system bundle,
//! [`crate::DEFAULT_CA_FILE`]) and, for mutual TLS, a client certificate chain and key.
//! Built once when the configuration is validated, so a bad file is a configuration
//! error at start, not a delivery failure later.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::{Tls, DEFAULT_CA_FILE};
use crate::error::{Error, Result};

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |m: String| Error::Config(format!("tls {what}: {}: {m}", path.display()));
    let list: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if list.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(list)
}

/// The rustls configuration of `t`.
///
/// # Errors
/// [`Error::Config`] naming the file that cannot be read or holds no usable PEM item,
/// or a certificate and key that do not go together.
pub fn client_config(t: &Tls) -> Result<Arc<ClientConfig>> {
    let ca = t.ca_file.clone().unwrap_or_else(|| DEFAULT_CA_FILE.into());
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs(&ca, "ca")?);
    if added == 0 {
        return Err(Error::Config(format!(
            "tls ca: {}: no usable certificate authority",
            ca.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("tls: {e}")))?
        .with_root_certificates(roots);
    let config = match (&t.cert_file, &t.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certs(cert, "cert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::Config(format!("tls key: {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("tls cert/key: {e}")))?
        }
        _ => {
            return Err(Error::Config(
                "tls cert/key: a client certificate needs both a cert file and a key file".into(),
            ))
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_garbage_files_are_config_errors() {
        let dir = std::env::temp_dir().join(format!("tcpinfo-kafka-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, b"not a certificate\n").unwrap();
        for t in [
            Tls {
                ca_file: Some(dir.join("absent.pem")),
                ..Tls::default()
            },
            Tls {
                ca_file: Some(junk.clone()),
                ..Tls::default()
            },
            Tls {
                ca_file: Some(junk.clone()),
                cert_file: Some(junk.clone()),
                key_file: None,
            },
        ] {
            let e = client_config(&t).expect_err("must fail");
            assert_eq!(e.code(), "ERR_CONFIG");
            assert!(e.to_string().contains("tls"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_system_bundle_loads_when_present() {
        if Path::new(DEFAULT_CA_FILE).exists() {
            assert!(client_config(&Tls::default()).is_ok());
        }
    }
}
