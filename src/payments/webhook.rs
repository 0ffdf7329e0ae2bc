//! Verifying `Stripe-Signature`: `t=<unix time>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">`,
//! possibly with several `v1` entries while secrets rotate. A signature is good when any `v1`
//! matches (compared in constant time) and `t` is within the tolerance of now.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The secret Stripe signs webhooks with (`STRIPE_WEBHOOK_SECRET`), if configured.
#[derive(Clone)]
pub struct WebhookSecret(pub Option<String>);

/// How far a signature's timestamp may be from now (SPEC: 5 minutes).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` against the raw `body` with `secret`, at `now` (unix seconds).
pub fn verify(header: &str, body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse().ok(),
            Some(("v1", value)) => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // `abs_diff`: a timestamp of any size, however absurd, is only stale, never an overflow.
    if now.abs_diff(timestamp) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mac = signed(secret, timestamp, body)?;
    // `verify_slice` compares in constant time.
    if signatures
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn signed(secret: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>, SignatureError> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Malformed)?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The header Stripe would send for `body` at `timestamp` (for tests and local tools).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let signature = signed(secret, timestamp, body)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={timestamp},v1={signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let header = sign(SECRET, 1_000, BODY);
        assert_eq!(verify(&header, BODY, SECRET, 1_000), Ok(()));
        assert_eq!(
            verify(&header, BODY, SECRET, 1_000 + TOLERANCE_SECS),
            Ok(())
        );
    }

    #[test]
    fn tampering_a_wrong_secret_and_staleness_are_refused() {
        let header = sign(SECRET, 1_000, BODY);
        assert_eq!(
            verify(&header, b"{}", SECRET, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, BODY, "whsec_other", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, BODY, SECRET, 1_000 + TOLERANCE_SECS + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("v1=abc", BODY, SECRET, 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("", BODY, SECRET, 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&format!("t={},v1=00", i64::MIN), BODY, SECRET, 1_000),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn any_matching_v1_is_enough_while_secrets_rotate() {
        let good = sign(SECRET, 1_000, BODY);
        let old = sign("whsec_old", 1_000, BODY);
        let old_v1 = old.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
        let header = format!("{good},v1={old_v1},v0=deadbeef");
        assert_eq!(verify(&header, BODY, SECRET, 1_000), Ok(()));
    }
}
