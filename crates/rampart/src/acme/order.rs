//! One certificate order: the account (stored, or created and stored), a new order for the
//! zone's names, each authorization proved by the configured challenge, the CSR (a fresh
//! ECDSA P-256 key), and the issued chain.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rustls::pki_types::PrivateKeyDer;

use super::{ACME_TLS_ALPN, Acme, lock, store};
use crate::config::acme::{AcmeConfig, ChallengeKind};

/// Why an order failed.
#[derive(Debug)]
pub(super) struct OrderError {
    /// What went wrong, for the log.
    pub message: String,
    /// The CA answered that a rate limit was hit.
    pub rate_limited: bool,
}

impl From<instant_acme::Error> for OrderError {
    fn from(e: instant_acme::Error) -> OrderError {
        let rate_limited = matches!(
            &e,
            instant_acme::Error::Api(p)
                if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:rateLimited")
        );
        let message = match &e {
            instant_acme::Error::Api(p) => format!(
                "the ACME server refused: {} ({})",
                p.detail.as_deref().unwrap_or("no detail"),
                p.r#type.as_deref().unwrap_or("no type")
            ),
            other => format!("ACME: {other}"),
        };
        OrderError {
            message,
            rate_limited,
        }
    }
}

impl From<String> for OrderError {
    fn from(message: String) -> OrderError {
        OrderError {
            message,
            rate_limited: false,
        }
    }
}

/// The challenges this order registered with [`Acme`], withdrawn when it ends.
struct Pending<'a> {
    acme: &'a Acme,
    tokens: Vec<String>,
    names: Vec<String>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut http = lock(&self.acme.http01);
        for t in &self.tokens {
            http.remove(t);
        }
        let mut alpn = lock(&self.acme.tls_alpn01);
        for n in &self.names {
            alpn.remove(n);
        }
    }
}

/// Orders a certificate for `names`: its PEM chain and PEM private key.
pub(super) async fn obtain(
    acme: &Acme,
    cfg: &AcmeConfig,
    names: &[String],
) -> Result<(String, String), OrderError> {
    let account = account(cfg).await?;
    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut pending = Pending {
        acme,
        tokens: Vec::new(),
        names: Vec::new(),
    };
    let kind = match cfg.challenge {
        ChallengeKind::Http01 => ChallengeType::Http01,
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
    };
    let mut authorizations = order.authorizations();
    while let Some(a) = authorizations.next().await {
        let mut a = a?;
        let name = a.identifier().to_string();
        match a.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => return Err(format!("the authorization for {name} is {other:?}").into()),
        }
        let mut challenge = a.challenge(kind.clone()).ok_or_else(|| {
            format!(
                "the ACME server offers no {} challenge for {name}",
                cfg.challenge.name()
            )
        })?;
        let key_authorization = challenge.key_authorization();
        match cfg.challenge {
            ChallengeKind::Http01 => {
                let token = challenge.token.clone();
                lock(&acme.http01).insert(token.clone(), key_authorization.as_str().to_string());
                pending.tokens.push(token);
            }
            ChallengeKind::TlsAlpn01 => {
                let config = validation_config(&name, key_authorization.digest().as_ref())?;
                lock(&acme.tls_alpn01).insert(name.clone(), config);
                pending.names.push(name.clone());
            }
        }
        challenge.set_ready().await?;
    }
    let patience = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(Duration::from_secs(120));
    let status = order.poll_ready(&patience).await?;
    if status != OrderStatus::Ready {
        return Err(format!("the order is {status:?}: {}", why_invalid(&mut order).await).into());
    }
    drop(pending);
    let key = order.finalize().await?;
    let chain = order.poll_certificate(&patience).await?;
    Ok((chain, key))
}

/// The account for the directory: the stored one, else a new one (then stored).
async fn account(cfg: &AcmeConfig) -> Result<Account, OrderError> {
    let builder = || match &cfg.ca_file {
        Some(path) => Account::builder_with_root(path),
        None => Account::builder(),
    };
    if let Some(credentials) = store::load_account(&cfg.storage, &cfg.directory)? {
        return Ok(builder()?.from_credentials(credentials).await?);
    }
    let contact = cfg.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contacts,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials) = builder()?.create(&new, cfg.directory.clone(), None).await?;
    tracing::info!(
        directory = cfg.directory,
        "ACME: account created: {}",
        account.id()
    );
    if let Err(e) = store::save_account(&cfg.storage, &cfg.directory, &credentials) {
        tracing::error!("ACME: the account could not be stored (a new one is made next time): {e}");
    }
    Ok(account)
}

/// What the CA said about the failed authorizations of `order`.
async fn why_invalid(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut a)) = authorizations.next().await {
        let name = a.identifier().to_string();
        if let Ok(state) = a.refresh().await {
            for c in &state.challenges {
                if let Some(p) = &c.error {
                    reasons.push(format!(
                        "{name}: {}",
                        p.detail.as_deref().unwrap_or("failed")
                    ));
                }
            }
        }
    }
    if reasons.is_empty() {
        "no reason given".into()
    } else {
        reasons.join("; ")
    }
}

/// The TLS-ALPN-01 validation certificate for `name` (RFC 8737 §3): self-signed, naming
/// only `name`, with the critical acmeIdentifier extension holding the SHA-256 digest of the
/// key authorization, served only to clients asking for `acme-tls/1`.
fn validation_config(name: &str, digest: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    let failed = |e: rcgen::Error| format!("cannot make the tls-alpn-01 certificate: {e}");
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(failed)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    let private = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let unusable = |e: rustls::Error| format!("cannot serve the tls-alpn-01 certificate: {e}");
    let provider = crate::tls::provider();
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(unusable)?;
    // Not `with_single_cert`: it checks the certificate with webpki, which refuses the
    // critical acmeIdentifier extension that is the point of this one.
    let certified = rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signing);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(unusable)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validation_certificate_names_the_domain_and_carries_the_digest() {
        let digest = [7u8; 32];
        let config = validation_config("shop.test", &digest).unwrap();
        assert_eq!(config.alpn_protocols, vec![ACME_TLS_ALPN.to_vec()]);
    }
}
