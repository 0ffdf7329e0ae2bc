-- Every node polls for accounts deactivated since its last poll (their tokens still
-- authenticate, but they may no longer book): a small index over the deactivated ones only.
CREATE INDEX users_deactivated_at_idx ON users (deactivated_at) WHERE deactivated_at IS NOT NULL;
