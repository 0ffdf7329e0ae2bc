-- A charge's Idempotency-Key belongs to the student who sent it, as a booking's does: another
-- student's key, equal by chance ("1", say), is another key. The provider is sent a key of our
-- own per payment, so students' keys never meet there either.
--
-- Nullable: nodes of the previous release, while the new one rolls out, charge without it.
ALTER TABLE payments ADD COLUMN student_id uuid REFERENCES users (id);
UPDATE payments p SET student_id = s.student_id FROM sessions s WHERE s.id = p.session_id;
ALTER TABLE payments DROP CONSTRAINT payments_idempotency_key;
CREATE UNIQUE INDEX payments_idempotency_key ON payments (provider, student_id, idempotency_key);
