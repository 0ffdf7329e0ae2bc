-- The tutor's hourly rate when the session was booked. A reschedule to another length is priced
-- at it, in the session's own currency: what the tutor charges now (perhaps in another currency)
-- is for new bookings.
--
-- Nullable, and not back-filled: nodes still running the previous release go on booking without
-- it while the new one rolls out. A session without it is priced at the rate its price implies.
ALTER TABLE sessions ADD COLUMN price_per_hour_cents bigint CHECK (price_per_hour_cents >= 0);
