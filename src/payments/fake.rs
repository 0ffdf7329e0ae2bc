use super::{ChargeOutcome, ChargeRequest, ChargeStatus};

/// A provider for development and tests: no network, instant, deterministic.
///
/// `payment_method` chooses the outcome: `"fail"` or `"card_declined"` fail the charge with
/// `card_declined`; `"requires_action"` leaves it waiting for the client; anything else (or
/// nothing) succeeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeProvider;

impl FakeProvider {
    pub fn charge(&self, request: &ChargeRequest) -> ChargeOutcome {
        let provider_ref = format!("fake_pi_{}", uuid::Uuid::now_v7().simple());
        let status = match request.payment_method.as_deref() {
            Some("fail" | "card_declined") => ChargeStatus::Failed {
                code: "card_declined".to_owned(),
            },
            Some("requires_action") => ChargeStatus::RequiresAction,
            _ => ChargeStatus::Succeeded,
        };
        let client_secret =
            (status == ChargeStatus::RequiresAction).then(|| format!("{provider_ref}_secret"));
        ChargeOutcome {
            provider_ref,
            status,
            client_secret,
        }
    }

    pub fn refund(&self, provider_ref: &str) -> String {
        format!("fake_re_{provider_ref}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Option<&str>) -> ChargeRequest {
        ChargeRequest {
            payment_id: uuid::Uuid::now_v7(),
            amount_cents: 12_000,
            currency: "BRL".to_owned(),
            idempotency_key: "k".to_owned(),
            session_id: uuid::Uuid::now_v7(),
            payment_method: method.map(str::to_owned),
        }
    }

    #[test]
    fn the_payment_method_chooses_the_outcome() {
        let provider = FakeProvider;
        assert_eq!(
            provider.charge(&request(None)).status,
            ChargeStatus::Succeeded
        );
        assert!(matches!(
            provider.charge(&request(Some("fail"))).status,
            ChargeStatus::Failed { .. }
        ));
        let pending = provider.charge(&request(Some("requires_action")));
        assert_eq!(pending.status, ChargeStatus::RequiresAction);
        assert!(pending.client_secret.is_some());
    }
}
