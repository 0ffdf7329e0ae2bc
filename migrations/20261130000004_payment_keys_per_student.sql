-- A charge's Idempotency-Key belongs to the student who sent it, as a booking's does: another
-- student's key, equal by chance ("1", say), is another key. The provider is sent a key of our
-- own per payment, so students' keys never meet there either.
--
-- Payments begun before have none: their charges went to the provider under the student's key,
-- and are sent again under it (a payment's student is its session's).
ALTER TABLE payments ADD COLUMN student_id uuid REFERENCES users (id);
ALTER TABLE payments DROP CONSTRAINT payments_idempotency_key;
CREATE UNIQUE INDEX payments_idempotency_key ON payments (provider, student_id, idempotency_key);
