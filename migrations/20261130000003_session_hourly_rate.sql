-- The tutor's hourly rate when the session was booked. A reschedule to another length is priced
-- at it, in the session's own currency: what the tutor charges now (perhaps in another currency)
-- is for new bookings.
ALTER TABLE sessions ADD COLUMN price_per_hour_cents bigint CHECK (price_per_hour_cents >= 0);
-- Sessions booked before: the rate their price implies.
UPDATE sessions
SET price_per_hour_cents = (price_cents * 60 + duration_minutes / 2) / duration_minutes;
ALTER TABLE sessions ALTER COLUMN price_per_hour_cents SET NOT NULL;
