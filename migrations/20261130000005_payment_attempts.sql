-- A charge sent again under a new key. A provider may keep answering a failed request's error
-- under its idempotency key (Stripe does, for a day), so a charge whose requests keep failing
-- is, once it has been looked up by our payment's id and found never made, sent under the next
-- key: `charge-<payment id>-<attempt>`. When that last happened, so the look-up never comes
-- before the provider's search has caught up with the previous attempt.
ALTER TABLE payments
    ADD COLUMN provider_attempt integer NOT NULL DEFAULT 0 CHECK (provider_attempt >= 0),
    ADD COLUMN provider_attempted_at timestamptz NOT NULL DEFAULT now();
