-- Recovering payments that went wrong half-way.
--
-- A charge the provider never answered is sent again exactly as first sent: the provider compares
-- a retried request with the first one made under the same idempotency key, so the payment method
-- is kept with the payment.
ALTER TABLE payments
    ADD COLUMN payment_method text CHECK (length(payment_method) BETWEEN 1 AND 255);

-- When a refund of this payment was last tried, so a refund that keeps failing goes to the back
-- of the queue instead of holding up the others.
ALTER TABLE payments ADD COLUMN refund_attempted_at timestamptz;

-- Sessions that owe a refund: paid, then cancelled. Each is settled by a refund, so the index
-- stays small, and the refund sweep reads only it.
CREATE INDEX sessions_refund_due_idx ON sessions (id)
    WHERE status = 'cancelled' AND payment_status = 'paid';
